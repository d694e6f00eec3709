//! The crate's API beyond the scenarios: the 5.1 example, errors, hooks vetoing and
//! panicking (embedded and remote), watch and resume, many threads on one manager, SQLite,
//! history paging, byte vectors, async streams.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hms_agent::lifecycle::*;
use hms_agent::proto::agent as pb;
use prost::Message;
use serde_json::Value;

/// `cargo test` builds the examples next to the test binaries: run section 5.1's and check
/// what it prints.
#[test]
fn the_specification_example_runs() {
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/spec_example");
    let out = std::process::Command::new(&example).output().unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Current state: Initialized\nTransitioned from Initialized to Active\n"
    );
}

#[test]
fn manager_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<LifecycleManagerFFI>();
    check::<Error>();
    check::<StreamCloser>();
    fn send<T: Send>() {}
    send::<EventStream>();
}

#[test]
fn errors_carry_a_code_and_go_into_box_dyn_error() {
    fn run(m: &LifecycleManagerFFI) -> Result<(), Box<dyn std::error::Error>> {
        m.get_state("nobody", false)?;
        Ok(())
    }
    let m = LifecycleManagerFFI::new();
    let e = run(&m).unwrap_err();
    let e = e.downcast_ref::<Error>().unwrap();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("nobody"), "{e}");
    let e = m.register_agent("bad id!").unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = m.transition_state(TransitionRequest::new("ghost", LifecycleState::Active)).unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[test]
fn refusals_are_answers() {
    let m = LifecycleManagerFFI::new();
    m.register_agent("r1").unwrap();
    let r = m.transition_state(TransitionRequest::new("r1", LifecycleState::Initialized)).unwrap();
    assert!(!r.success);
    assert_eq!(r.refusal_reason, RefusalReason::InvalidTransition);
    assert_eq!(r.current_state, LifecycleState::Initialized);
    assert!(r.error_message.as_deref().unwrap().contains("INITIALIZED"), "{:?}", r.error_message);
    let r = m.transition_state(TransitionRequest::new("r1", LifecycleState::Upgrading).force()).unwrap();
    assert!(r.success);
    assert_eq!(r.event.unwrap().transition_type, TransitionType::Forced);
    let info = ErrorInfo { code: 7, message: "disk".into(), is_recoverable: true, ..Default::default() };
    let r = m
        .transition_state_with(
            TransitionRequest::new("r1", LifecycleState::Error),
            TransitionOptions { error_info: Some(info), ..Default::default() },
        )
        .unwrap();
    assert!(r.success);
    let s = m.get_state("r1", true).unwrap();
    assert_eq!(s.error_info.unwrap().message, "disk");
}

fn gatekeeper(m: &LifecycleManagerFFI) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    m.serve_hook("gate", move |inv| {
        c.fetch_add(1, Ordering::SeqCst);
        assert!(inv.blocking);
        match inv.event.reason.as_str() {
            "" => HookDecision::Veto("a reason is required".into()),
            "boom" => panic!("hook exploded"),
            "fail" => HookDecision::Fail("policy service down".into()),
            _ => HookDecision::Allow,
        }
    })
    .unwrap();
    assert_eq!(m.serve_hook("gate", |_| HookDecision::Allow).unwrap_err().code(), Code::AlreadyExists);
    let h = m
        .register_hook(RegisterHookRequest {
            trigger_states: vec![LifecycleState::Active],
            is_blocking: true,
            timeout_ms: 2000,
            ..RegisterHookRequest::callback("gate", "gate")
        })
        .unwrap();
    assert!(h.success);
    m.register_agent("h1").unwrap();
    let go =
        |reason: &str| m.transition_state(TransitionRequest::new("h1", LifecycleState::Active).reason(reason)).unwrap();

    let r = go("");
    assert!(!r.success);
    assert_eq!(r.refusal_reason, RefusalReason::HookVetoed);
    assert!(r.error_message.unwrap().contains("a reason is required"));
    assert_eq!(r.hook_outcomes[0].result, HookResult::Vetoed);

    let r = go("boom");
    assert_eq!(r.refusal_reason, RefusalReason::HookFailed);
    assert!(r.hook_outcomes[0].message.contains("hook exploded"), "{:?}", r.hook_outcomes);

    let r = go("fail");
    assert_eq!(r.refusal_reason, RefusalReason::HookFailed);

    let r = go("go");
    assert!(r.success, "{:?}", r.error_message);
    assert_eq!(r.hook_outcomes[0].result, HookResult::Allowed);
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let hooks = m.list_hooks().unwrap();
    assert_eq!((hooks[0].invocations, hooks[0].vetoed, hooks[0].failed, hooks[0].allowed), (4, 1, 2, 1));

    // A panic under failure_policy=ignore lets the transition happen.
    m.unregister_hook(&h.hook_id).unwrap();
    assert_eq!(m.unregister_hook(&h.hook_id).unwrap_err().code(), Code::NotFound);
    let mut lenient = RegisterHookRequest::callback("lenient", "gate");
    lenient.is_blocking = true;
    lenient.trigger_states = vec![LifecycleState::Active];
    lenient.config.insert("failure_policy".into(), "ignore".into());
    m.register_hook(lenient).unwrap();
    m.transition_state(TransitionRequest::new("h1", LifecycleState::Paused)).unwrap();
    let r = go("boom");
    assert!(r.success);
    assert!(!r.hook_outcomes[0].enforced);
    assert!(m.stop_hook("gate"));
}

#[test]
fn hooks_veto_and_panics_fail_embedded() {
    let m = LifecycleManagerFFI::new();
    gatekeeper(&m);
    m.close().unwrap();
}

#[test]
fn hooks_veto_and_panics_fail_remote() {
    let server = common::Server::start(None);
    let m = LifecycleManagerFFI::builder().remote(&server.url).open().unwrap();
    assert!(m.is_remote());
    gatekeeper(&m);
    m.close().unwrap();
}

fn watch_and_resume(m: &LifecycleManagerFFI) {
    m.register_agent("w1").unwrap();
    for s in [LifecycleState::Active, LifecycleState::Paused, LifecycleState::Active] {
        assert!(m.transition_state(TransitionRequest::new("w1", s)).unwrap().success);
    }
    let req = |from| WatchEventsRequest { agent_id: "w1".into(), from_sequence: from, ..Default::default() };
    let mut events = m.watch_events(req(1)).unwrap();
    let first: Vec<LifecycleEvent> = events.by_ref().take(2).collect::<Result<_, _>>().unwrap();
    assert_eq!(first[0].new_state, LifecycleState::Initialized);
    assert_eq!(first[1].new_state, LifecycleState::Active);
    let resume = events.resume_sequence();
    assert_eq!(resume, first[1].sequence + 1);
    drop(events); // closes it, without blocking

    m.transition_state(TransitionRequest::new("w1", LifecycleState::Paused)).unwrap();
    let mut events = m.watch_events(req(resume)).unwrap();
    let rest: Vec<LifecycleEvent> = events.by_ref().take(3).collect::<Result<_, _>>().unwrap();
    let states: Vec<_> = rest.iter().map(|e| e.new_state).collect();
    assert_eq!(states, [LifecycleState::Paused, LifecycleState::Active, LifecycleState::Paused]);
    assert_eq!(rest[0].sequence, resume);
    assert!(rest.windows(2).all(|w| w[1].sequence > w[0].sequence));
    assert!(events.next_timeout(Duration::from_millis(100)).unwrap().is_none());

    // Live: an event from another thread wakes a blocked next.
    let handle = std::thread::scope(|s| {
        let h = s.spawn(|| events.next().unwrap().unwrap());
        std::thread::sleep(Duration::from_millis(50));
        m.transition_state(TransitionRequest::new("w1", LifecycleState::Active).reason("live")).unwrap();
        h.join().unwrap()
    });
    assert_eq!(handle.reason, "live");
    assert_eq!(handle.timestamp.timezone(), chrono::Utc);

    // Closed from another thread: the iteration ends.
    let closer = events.closer();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        closer.close();
    });
    assert!(events.next().is_none());
}

#[test]
fn watch_resumes_with_no_gap_embedded() {
    watch_and_resume(&LifecycleManagerFFI::new());
}

#[test]
fn watch_resumes_with_no_gap_remote() {
    let server = common::Server::start(None);
    let m = LifecycleManagerFFI::builder().remote(&server.url).open().unwrap();
    watch_and_resume(&m);
    m.close().unwrap();
}

#[test]
fn closing_the_manager_ends_its_streams_with_a_resume_point() {
    let m = LifecycleManagerFFI::new();
    m.register_agent("c1").unwrap();
    let mut events = m.watch_events(WatchEventsRequest { from_sequence: 1, ..Default::default() }).unwrap();
    assert!(events.next().unwrap().is_ok());
    let t = std::thread::spawn(move || (events.next(), events.resume_sequence()));
    std::thread::sleep(Duration::from_millis(50));
    m.close().unwrap();
    let (end, resume) = t.join().unwrap();
    let end = end.expect("an error ends the stream").unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end}");
    assert_eq!(end.resume_sequence(), Some(2));
    assert_eq!(resume, 2);
}

#[test]
fn drop_never_blocks_and_is_idempotent() {
    let m = LifecycleManagerFFI::new();
    m.serve_hook("slow", |_| {
        std::thread::sleep(Duration::from_millis(300));
        HookDecision::Allow
    })
    .unwrap();
    let mut events = m.watch_events(WatchEventsRequest::default()).unwrap();
    let t = std::thread::spawn(move || events.next());
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    drop(m);
    assert!(start.elapsed() < Duration::from_millis(100), "drop took {:?}", start.elapsed());
    // The blocked watcher is woken by the close (which Drop starts in the background).
    let end = t.join().unwrap();
    assert!(matches!(end, None | Some(Err(_))));
}

#[test]
fn many_threads_share_one_manager() {
    let m = Arc::new(LifecycleManagerFFI::new());
    let threads = 8;
    let per = 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let m = m.clone();
            s.spawn(move || {
                let id = format!("t{t}");
                m.register_agent(&id).unwrap();
                for i in 0..per {
                    let target = if i % 2 == 0 { LifecycleState::Active } else { LifecycleState::Paused };
                    let r = m.transition_state(TransitionRequest::new(&id, target)).unwrap();
                    assert!(r.success, "{:?}", r.error_message);
                    // And a shared agent everyone races on: refusals, never errors.
                    let _ = m.get_state(&id, true).unwrap();
                }
            });
        }
        // Everyone races on one agent too.
        m.register_agent("shared").unwrap();
        for _ in 0..threads {
            let m = m.clone();
            s.spawn(move || {
                for i in 0..per {
                    let target = if i % 2 == 0 { LifecycleState::Active } else { LifecycleState::Paused };
                    m.transition_state(TransitionRequest::new("shared", target)).unwrap();
                }
            });
        }
    });
    for t in 0..threads {
        let s = m.get_state(&format!("t{t}"), false).unwrap();
        assert_eq!(s.revision, 1 + per as i64);
    }
    let shared = m.get_state("shared", false).unwrap();
    let events: Vec<_> = m
        .history(GetHistoryRequest { agent_id: "shared".into(), ..Default::default() })
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(events.len() as i64, shared.revision);
    Arc::into_inner(m).unwrap().close().unwrap();
}

#[test]
fn history_pages_and_agent_lists() {
    let m = LifecycleManagerFFI::new();
    for i in 0..30 {
        let mut o = RegisterAgentOptions::default();
        o.labels.insert("pool".into(), if i % 3 == 0 { "blue" } else { "green" }.into());
        m.register_agent_with(&format!("a{i:02}"), o).unwrap();
    }
    for i in 0..30 {
        m.transition_state(TransitionRequest::new(format!("a{i:02}"), LifecycleState::Active)).unwrap();
    }
    let all: Vec<_> =
        m.history(GetHistoryRequest { limit: 7, ..Default::default() }).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 60);
    assert!(all.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
    let page = m.get_transition_history(GetHistoryRequest { limit: 7, ..Default::default() }).unwrap();
    assert_eq!(page.events.len(), 7);
    assert!(!page.next_page_token.is_empty());

    let mut sel = HashMap::new();
    sel.insert("pool".to_string(), "blue".to_string());
    assert_eq!(m.get_state("a00", true).unwrap().labels["pool"], "blue");
    assert!(m.get_state("a00", false).unwrap().labels.is_empty());
    let blue = m.list_agents(ListAgentsRequest { label_selector: sel, ..Default::default() }).unwrap();
    assert_eq!(blue.agents.len(), 10);
    let active = m
        .list_agents(ListAgentsRequest { states: vec![LifecycleState::Active], page_size: 25, ..Default::default() })
        .unwrap();
    assert_eq!(active.agents.len(), 25);
    assert!(!active.next_page_token.is_empty());
    assert_eq!(m.heartbeat(&["a00", "zz"]).unwrap(), vec!["zz".to_string()]);
    let st = m
        .set_supervision_policy("a00", Some(SupervisionPolicy { heartbeat_timeout_ms: 60_000, ..Default::default() }))
        .unwrap();
    assert!(!st.default_policy);
}

#[test]
fn sqlite_keeps_state_across_managers() {
    let dir = common::TempDir::new("sqlite");
    let m = LifecycleManagerFFI::builder().sqlite(&dir.0).sqlite_sync("normal").open().unwrap();
    m.register_agent("p1").unwrap();
    m.transition_state(TransitionRequest::new("p1", LifecycleState::Active)).unwrap();
    m.close().unwrap();
    let m = LifecycleManagerFFI::builder().sqlite(&dir.0).open().unwrap();
    assert_eq!(m.get_state("p1", false).unwrap().state, LifecycleState::Active);
    m.close().unwrap();
}

#[test]
fn bad_settings_are_invalid_arguments() {
    let e = LifecycleManagerFFI::builder().setting("nonsense", Value::Bool(true)).open().unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("nonsense"), "{e}");
}

// The shared byte vectors: the crate's messages encode and decode as every other language's.
fn vector(name: &str, ext: &str) -> Vec<u8> {
    std::fs::read(common::repo().join("testdata/vectors").join(format!("{name}.{ext}"))).unwrap()
}

fn as_json(message: &str, pb: &[u8]) -> Value {
    serde_json::from_slice(&convert(message, Format::Protobuf, pb, Format::Json).unwrap()).unwrap()
}

fn check_vector(name: &str, message: &str) {
    let full = format!("hms.agent.lifecycle.v1.{message}");
    let (bin, json, cbor) = (vector(name, "binpb"), vector(name, "json"), vector(name, "cbor"));
    let want = serde_json::from_slice::<Value>(&json).unwrap();
    // Protobuf map entries have no fixed order: protobuf output is compared as what it says.
    let pb = convert(&full, Format::Json, &json, Format::Protobuf).unwrap();
    assert_eq!(as_json(&full, &pb), want, "{name}: json → protobuf");
    assert_eq!(
        convert(&full, Format::Protobuf, &bin, Format::Cbor).unwrap(),
        cbor,
        "{name}: protobuf → cbor (deterministic)"
    );
    let pb = convert(&full, Format::Cbor, &cbor, Format::Protobuf).unwrap();
    assert_eq!(as_json(&full, &pb), want, "{name}: cbor → protobuf");
    assert_eq!(as_json(&full, &bin), want, "{name}: protobuf → json");
}

#[test]
fn byte_vectors() {
    // Decoded by the crate into its types, and what it encodes reads back the same.
    check_vector("get_state_response", "GetStateResponse");
    let s: GetStateResponse = pb::GetStateResponse::decode(&vector("get_state_response", "binpb")[..]).unwrap().into();
    assert_eq!((s.state, s.previous_state), (LifecycleState::Error, LifecycleState::Active));
    assert_eq!((s.time_in_state_ms, s.revision, s.last_sequence), (1500, 3, 42));
    assert!(s.is_transitioning);
    assert_eq!(s.labels["pool"], "blue");
    assert_eq!(s.allowed_next_states, [LifecycleState::Recovering, LifecycleState::Terminated]);
    let e = s.error_info.unwrap();
    assert_eq!((e.code, e.message.as_str()), (503, "backend unreachable"));
    let t = s.last_transition.unwrap();
    assert_eq!(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), "2026-11-22T09:30:00.123456789Z");

    check_vector("lifecycle_event", "LifecycleEvent");
    let ev: LifecycleEvent = pb::LifecycleEvent::decode(&vector("lifecycle_event", "binpb")[..]).unwrap().into();
    assert_eq!(ev.event_id, "01a204d9-1034-7352-b362-2908ae20dd18");
    assert_eq!((ev.previous_state, ev.new_state), (LifecycleState::Active, LifecycleState::Maintenance));
    assert_eq!(ev.transition_type, TransitionType::Maintenance);
    assert_eq!(ev.sequence, u64::MAX);
    assert_eq!(ev.metadata["ticket"], "CHG-42");
    assert_eq!(ev.hook_outcomes[0].result, HookResult::Allowed);
    assert_eq!(ev.timestamp.timestamp_subsec_nanos(), 123_456_789);

    check_vector("transition_request", "TransitionRequest");
    let mut metadata = HashMap::new();
    metadata.insert("ticket".to_string(), "CHG-42".to_string());
    metadata.insert("zone".to_string(), "eu".to_string());
    let req = TransitionRequest {
        agent_id: "agent-001".into(),
        target_state: LifecycleState::Error,
        force: true,
        reason: "disk full".into(),
        timeout_ms: 5000,
        metadata,
    };
    let opts = TransitionOptions {
        expected_state: LifecycleState::Active,
        expected_revision: 1 << 40,
        error_info: Some(ErrorInfo {
            code: -3,
            message: "no space".into(),
            timestamp: chrono::DateTime::parse_from_rfc3339("2026-11-22T09:30:00.123456789Z").ok().map(Into::into),
            is_recoverable: true,
            recovery_actions: vec!["RECOVERING".into()],
        }),
    };
    let ours = hms_agent_transition_bytes(req, opts);
    assert_eq!(
        as_json("hms.agent.lifecycle.v1.TransitionRequest", &ours),
        serde_json::from_slice::<Value>(&vector("transition_request", "json")).unwrap()
    );

    check_vector("register_hook_request", "RegisterHookRequest");
    let mut hook = RegisterHookRequest::callback("audit", "audit");
    hook.config.remove("type");
    hook.config.insert("failure_policy".into(), "ignore".into());
    hook.trigger_states = vec![LifecycleState::Terminated];
    hook.is_blocking = true;
    hook.timeout_ms = 3000;
    hook.agent_ids = vec!["a".into(), "b".into()];
    let ours = pb::RegisterHookRequest::from(hook).encode_to_vec();
    assert_eq!(
        as_json("hms.agent.lifecycle.v1.RegisterHookRequest", &ours),
        serde_json::from_slice::<Value>(&vector("register_hook_request", "json")).unwrap()
    );

    check_vector("watch_events_request", "WatchEventsRequest");
    let w = WatchEventsRequest {
        agent_id: "agent-001".into(),
        states: vec![LifecycleState::Error],
        transition_types: vec![TransitionType::Forced],
        from_sequence: 1000,
        bookmark_interval_ms: 250,
    };
    assert_eq!(pb::WatchEventsRequest::from(w).encode_to_vec(), vector("watch_events_request", "binpb"));
}

/// The protobuf bytes the crate sends for a transition.
fn hms_agent_transition_bytes(req: TransitionRequest, opts: TransitionOptions) -> Vec<u8> {
    // Through the public conversions: the six fields, then the options.
    let mut m = pb::TransitionRequest {
        agent_id: req.agent_id,
        target_state: req.target_state.to_i32(),
        force: req.force,
        reason: req.reason,
        timeout_ms: req.timeout_ms,
        metadata: req.metadata,
        ..Default::default()
    };
    m.expected_state = opts.expected_state.to_i32();
    m.expected_revision = opts.expected_revision;
    m.error_info = opts.error_info.map(Into::into);
    m.encode_to_vec()
}

#[cfg(feature = "tokio")]
mod async_stream {
    use super::*;
    use futures::StreamExt;

    async fn watch_async(m: Arc<LifecycleManagerFFI>) {
        m.register_agent("s1").unwrap();
        let mut events = m
            .watch_events(WatchEventsRequest { agent_id: "s1".into(), from_sequence: 1, ..Default::default() })
            .unwrap();
        let first = events.next_async().await.unwrap().unwrap();
        assert_eq!(first.new_state, LifecycleState::Initialized);
        // Live events arrive while the executor thread stays free.
        let m2 = m.clone();
        let writer = tokio::spawn(async move {
            for (i, s) in
                [LifecycleState::Active, LifecycleState::Paused, LifecycleState::Active].into_iter().enumerate()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let m = m2.clone();
                tokio::task::spawn_blocking(move || {
                    m.transition_state(TransitionRequest::new("s1", s).reason(format!("{i}")))
                })
                .await
                .unwrap()
                .unwrap();
            }
        });
        let got: Vec<_> = StreamExt::take(&mut events, 3).map(|e| e.unwrap().reason).collect().await;
        assert_eq!(got, ["0", "1", "2"]);
        writer.await.unwrap();
        // Nothing more: a timeout, not a blocked thread.
        assert!(tokio::time::timeout(Duration::from_millis(100), events.next_async()).await.is_err());
        // As a plain Stream (no Iterator methods to clash with StreamExt's).
        let closer = events.closer();
        let mut events = events.into_stream();
        m.transition_state(TransitionRequest::new("s1", LifecycleState::Paused).reason("3")).unwrap();
        assert_eq!(events.next().await.unwrap().unwrap().reason, "3");
        closer.close();
        assert!(events.next().await.is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stream_on_a_single_thread_runtime_embedded() {
        watch_async(Arc::new(LifecycleManagerFFI::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_remote() {
        let server = common::Server::start(None);
        let m = LifecycleManagerFFI::builder().remote(&server.url).open().unwrap();
        watch_async(Arc::new(m)).await;
    }
}
