//! `cargo bench` (criterion): the crate's embedded `get_state` and `transition_state` against
//! the same calls made directly through the C ABI (`hms-agent-sys`, with pre-encoded protobuf
//! requests and the response freed, undecoded) in the same run; and watch throughput into
//! `LifecycleEvent` values (with the raw C drain of the same events as a baseline).

use std::ffi::{CStr, c_void};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use hms_agent::lifecycle::*;
use hms_agent::proto::agent as pb;
use hms_agent_sys as sys;
use prost::Message;

const GET_STATE: &CStr = c"hms.agent.lifecycle.v1.LifecycleManager/GetState";
const TRANSITION: &CStr = c"hms.agent.lifecycle.v1.LifecycleManager/TransitionState";

/// A manager handle opened directly through the C ABI, with one agent registered.
fn c_open(agent: &str) -> u64 {
    let mut h = 0;
    let rc = unsafe { sys::hms_open(b"{}".as_ptr(), 2, &mut h, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    let req = pb::RegisterAgentRequest { agent_id: agent.into(), ..Default::default() }.encode_to_vec();
    c_call(h, c"hms.agent.lifecycle.v1.LifecycleManager/RegisterAgent", &req);
    h
}

/// One C call: the request bytes in, the response bytes freed.
fn c_call(h: u64, method: &CStr, req: &[u8]) -> usize {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0;
    let rc = unsafe {
        sys::hms_call(h, method.as_ptr(), 0, req.as_ptr(), req.len(), &mut out, &mut len, std::ptr::null_mut())
    };
    assert_eq!(rc, 0);
    unsafe { sys::hms_free(out as *mut c_void) };
    len
}

fn unary(c: &mut Criterion) {
    let mut g = c.benchmark_group("embedded");
    g.measurement_time(Duration::from_secs(4));

    let h = c_open("bench-c");
    let get = pb::GetStateRequest { agent_id: "bench-c".into(), include_details: false }.encode_to_vec();
    g.bench_function("get_state/c", |b| b.iter(|| black_box(c_call(h, GET_STATE, black_box(&get)))));

    let m = LifecycleManagerFFI::new();
    m.register_agent("bench-rust").unwrap();
    g.bench_function("get_state/rust", |b| b.iter(|| black_box(m.get_state(black_box("bench-rust"), false).unwrap())));

    // Fresh managers for the transitions, each closed after its benchmark, so that neither
    // runs on the other's grown history.
    unsafe { sys::hms_close(h, std::ptr::null_mut()) };
    m.close().unwrap();
    let h = c_open("bench-c");
    let to = |s: LifecycleState| {
        pb::TransitionRequest { agent_id: "bench-c".into(), target_state: s.to_i32(), ..Default::default() }
            .encode_to_vec()
    };
    let (active, paused) = (to(LifecycleState::Active), to(LifecycleState::Paused));
    let mut i = 0u64;
    g.bench_function("transition_state/c", |b| {
        b.iter(|| {
            i += 1;
            black_box(c_call(h, TRANSITION, if i % 2 == 1 { &active } else { &paused }))
        })
    });

    unsafe { sys::hms_close(h, std::ptr::null_mut()) };
    let m = LifecycleManagerFFI::new();
    m.register_agent("bench-rust").unwrap();
    let mut i = 0u64;
    g.bench_function("transition_state/rust", |b| {
        b.iter(|| {
            i += 1;
            let target = if i % 2 == 1 { LifecycleState::Active } else { LifecycleState::Paused };
            let r = m.transition_state(TransitionRequest::new("bench-rust", target)).unwrap();
            debug_assert!(r.success);
            black_box(r)
        })
    });
    g.finish();
    m.close().unwrap();
}

/// The crate against C, paired: rounds of 2,000 C calls then 2,000 crate calls on managers
/// that grow alike, the median per-call time of each over the rounds — robust to a busy
/// machine, where consecutive criterion benchmarks see different loads.
fn paired() {
    let rounds = 40;
    let n = 2000;
    // get_state reads an agent that does not move: on the memory store GetState's cost grows
    // with the agent's own history (about 1 µs per event; reported), which the transitions
    // of the other agent grow.
    let h = c_open("pair");
    let idle = pb::RegisterAgentRequest { agent_id: "idle".into(), ..Default::default() }.encode_to_vec();
    c_call(h, c"hms.agent.lifecycle.v1.LifecycleManager/RegisterAgent", &idle);
    let m = LifecycleManagerFFI::new();
    m.register_agent("pair").unwrap();
    m.register_agent("idle").unwrap();
    let get = pb::GetStateRequest { agent_id: "idle".into(), include_details: false }.encode_to_vec();
    let to = |s: LifecycleState| {
        pb::TransitionRequest { agent_id: "pair".into(), target_state: s.to_i32(), ..Default::default() }
            .encode_to_vec()
    };
    let (active, paused) = (to(LifecycleState::Active), to(LifecycleState::Paused));
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let per_call = |start: Instant| start.elapsed().as_secs_f64() * 1e9 / n as f64;
    let (mut gc, mut gr, mut tc, mut tr) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            black_box(c_call(h, GET_STATE, &get));
        }
        gc.push(per_call(t));
        let t = Instant::now();
        for _ in 0..n {
            black_box(m.get_state("idle", false).unwrap());
        }
        gr.push(per_call(t));
        let t = Instant::now();
        for i in 0..n {
            black_box(c_call(h, TRANSITION, if i % 2 == 0 { &active } else { &paused }));
        }
        tc.push(per_call(t));
        let t = Instant::now();
        for i in 0..n {
            let target = if i % 2 == 0 { LifecycleState::Active } else { LifecycleState::Paused };
            black_box(m.transition_state(TransitionRequest::new("pair", target)).unwrap());
        }
        tr.push(per_call(t));
    }
    let (gc, gr, tc, tr) = (median(gc), median(gr), median(tc), median(tr));
    println!("paired ({rounds} rounds of {n} calls, median ns/call):");
    println!("  get_state         C {gc:8.0}  crate {gr:8.0}  crate/C {:.2}x", gr / gc);
    println!("  transition_state  C {tc:8.0}  crate {tr:8.0}  crate/C {:.2}x", tr / tc);
    unsafe { sys::hms_close(h, std::ptr::null_mut()) };
    m.close().unwrap();
}

const EVENTS: u64 = 100_000;

fn watch(c: &mut Criterion) {
    let m = LifecycleManagerFFI::new();
    m.register_agent("w").unwrap();
    for i in 0..EVENTS - 1 {
        let target = if i % 2 == 0 { LifecycleState::Active } else { LifecycleState::Paused };
        let mut r = TransitionRequest::new("w", target).reason("benchmark");
        r.metadata.insert("i".into(), i.to_string());
        m.transition_state(r).unwrap();
    }
    let mut g = c.benchmark_group("watch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("into_lifecycle_events/rust", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let events = m.watch_events(WatchEventsRequest { from_sequence: 1, ..Default::default() }).unwrap();
                let mut n = 0;
                for e in events {
                    let e = e.unwrap();
                    n += 1;
                    if e.sequence == EVENTS {
                        break;
                    }
                }
                total += start.elapsed();
                assert_eq!(n, EVENTS);
            }
            total
        })
    });
    g.bench_function("raw_batches/c", |b| {
        let req = pb::WatchEventsRequest { from_sequence: 1, ..Default::default() }.encode_to_vec();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut s = m.watch_raw_stream("WatchEvents", Format::Protobuf, &req).unwrap();
                for _ in 0..EVENTS {
                    black_box(s.next().unwrap().unwrap());
                }
                total += start.elapsed();
            }
            total
        })
    });
    // The crate's own part: the same events, already taken from the library as batches,
    // decoded into LifecycleEvent values.
    let batches = c_batches();
    g.bench_function("decode_batches/rust", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for batch in &batches {
                let mut rest = &batch[..];
                while rest.len() >= 4 {
                    let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
                    let e: LifecycleEvent = pb::LifecycleEvent::decode(&rest[4..4 + len]).unwrap().into();
                    black_box(e);
                    rest = &rest[4 + len..];
                    n += 1;
                }
            }
            assert_eq!(n, EVENTS);
        })
    });
    g.finish();
    m.close().unwrap();
}

/// Every event as the library's batches, copied out.
/// (On a handle of its own: the same events, re-created through the C ABI.)
fn c_batches() -> Vec<Vec<u8>> {
    let h = c_open("w");
    for i in 0..EVENTS - 1 {
        let target = if i % 2 == 0 { LifecycleState::Active } else { LifecycleState::Paused };
        let mut r = pb::TransitionRequest {
            agent_id: "w".into(),
            target_state: target.to_i32(),
            reason: "benchmark".into(),
            ..Default::default()
        };
        r.metadata.insert("i".into(), i.to_string());
        c_call(h, TRANSITION, &r.encode_to_vec());
    }
    let req = pb::WatchEventsRequest { from_sequence: 1, ..Default::default() }.encode_to_vec();
    let mut s = 0;
    let rc = unsafe {
        sys::hms_watch(
            h,
            c"hms.agent.lifecycle.v1.LifecycleManager/WatchEvents".as_ptr(),
            0,
            req.as_ptr(),
            req.len(),
            &mut s,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0);
    let mut out = Vec::new();
    let mut n = 0;
    while n < EVENTS {
        let mut b: *mut u8 = std::ptr::null_mut();
        let mut len = 0;
        let rc = unsafe { sys::hms_next(s, -1, 0, &mut b, &mut len, std::ptr::null_mut()) };
        assert_eq!(rc, 0);
        let batch = unsafe { std::slice::from_raw_parts(b, len) }.to_vec();
        unsafe { sys::hms_free(b as *mut c_void) };
        let mut rest = &batch[..];
        while rest.len() >= 4 {
            let l = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4 + l..];
            n += 1;
        }
        out.push(batch);
    }
    unsafe { sys::hms_close(h, std::ptr::null_mut()) };
    out
}

criterion_group!(benches, unary, watch);

fn main() {
    paired();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
