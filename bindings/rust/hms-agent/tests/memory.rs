//! Every buffer from the library is freed exactly once: 3000 cycles of open, 30 calls (answers,
//! errors with messages, refusals), a watch with a batch, a hook worker, close — the
//! process's resident memory stays flat (a leak of one small buffer per cycle would show as
//! 3000 × its size), and no handle is left open. Its own test binary: RSS is per process.

use std::time::Duration;

use hms_agent::lifecycle::*;

fn rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn cycle(i: usize) {
    let m = LifecycleManagerFFI::new();
    let id = format!("agent-{i}");
    m.register_agent(&id).unwrap();
    assert_eq!(m.register_agent(&id).unwrap_err().code(), Code::AlreadyExists); // an error message
    assert_eq!(m.get_state("ghost", true).unwrap_err().code(), Code::NotFound);
    let r = m.transition_state(TransitionRequest::new(&id, LifecycleState::Active).reason("go")).unwrap();
    assert!(r.success);
    let r = m.transition_state(TransitionRequest::new(&id, LifecycleState::Active)).unwrap();
    assert!(!r.success); // a refusal, with a message
    for _ in 0..20 {
        m.get_state(&id, true).unwrap();
    }
    for _ in 0..5 {
        assert!(m.get_state("ghost", false).is_err());
    }
    let mut events = m.watch_events(WatchEventsRequest { from_sequence: 1, ..Default::default() }).unwrap();
    assert_eq!(events.by_ref().take(2).count(), 2);
    assert!(events.next_timeout(Duration::ZERO).unwrap().is_none());
    drop(events);
    if i % 10 == 0 {
        m.serve_hook("cb", |_| HookDecision::Allow).unwrap();
        m.register_hook(RegisterHookRequest { is_blocking: true, ..RegisterHookRequest::callback("h", "cb") }).unwrap();
        m.transition_state(TransitionRequest::new(&id, LifecycleState::Paused)).unwrap();
    }
    let _ = convert("hms.agent.lifecycle.v1.GetStateRequest", Format::Json, b"{\"agentId\":\"a\"}", Format::Protobuf)
        .unwrap();
    let _ = convert("hms.agent.lifecycle.v1.GetStateRequest", Format::Json, b"{bad", Format::Protobuf).unwrap_err();
    m.close().unwrap();
}

#[test]
fn memory_stays_flat_over_3000_cycles() {
    for i in 0..300 {
        cycle(i);
    }
    let before = rss_kib();
    for i in 0..3000 {
        cycle(i);
    }
    let after = rss_kib();
    println!("memory: RSS {before} KiB before, {after} KiB after 3000 cycles");
    assert!(after - before < 16 * 1024, "RSS grew by {} KiB over 3000 cycles ({before} → {after})", after - before);
    assert_eq!(open_handles(), 0, "handles left open");
}
