//! Hooks served in Rust: closures registered by callback name, each served on a thread the
//! crate owns that pulls invocations from the library (a hook worker) and completes them.
//! The core never calls into Rust; the same code serves embedded and remote managers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use prost::Message;

use crate::error::Error;
use crate::ffi;
use crate::proto::agent as pb;

use super::LifecycleEvent;
use super::types::time_from;

/// One invocation of a callback hook.
///
/// ```
/// use hms_agent::lifecycle::{HookDecision, HookInvocation, LifecycleState};
/// let gate = |inv: &HookInvocation| {
///     if inv.event.new_state == LifecycleState::Active && inv.event.reason.is_empty() {
///         HookDecision::Veto("a reason is required".into())
///     } else {
///         HookDecision::Allow
///     }
/// };
/// # let _ = gate;
/// ```
#[derive(Debug, Clone)]
pub struct HookInvocation {
    /// The invocation's id.
    pub invocation_id: String,
    /// The callback name it was sent to.
    pub callback: String,
    /// The hook.
    pub hook_id: String,
    /// The hook's name.
    pub hook_name: String,
    /// Blocking hooks run before the transition and may veto it (the event has no sequence
    /// yet); non-blocking ones are told of committed events.
    pub blocking: bool,
    /// The transition (blocking) or the committed event.
    pub event: LifecycleEvent,
    /// The same for every retry of one delivery.
    pub idempotency_key: String,
    /// The delivery attempt (from 1).
    pub attempt: i32,
    /// Answer before this, or the invocation times out.
    pub deadline: Option<DateTime<Utc>>,
}

impl From<pb::HookInvocation> for HookInvocation {
    fn from(i: pb::HookInvocation) -> Self {
        let r = i.request.unwrap_or_default();
        HookInvocation {
            invocation_id: i.invocation_id,
            callback: i.callback,
            hook_id: r.hook_id,
            hook_name: r.hook_name,
            blocking: r.blocking,
            event: r.event.unwrap_or_default().into(),
            idempotency_key: r.idempotency_key,
            attempt: r.attempt,
            deadline: time_from(r.deadline),
        }
    }
}

/// A hook's answer.
///
/// ```
/// use hms_agent::lifecycle::HookDecision;
/// let d = HookDecision::Veto("not now".into());
/// assert_ne!(d, HookDecision::Allow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookDecision {
    /// Let the transition happen.
    Allow,
    /// Veto it (blocking hooks), with the reason.
    Veto(String),
    /// The hook failed, with the error: its `failure_policy` decides (`fail` refuses the
    /// transition, `ignore` lets it happen).
    Fail(String),
}

/// The function type of a hook.
pub(crate) type HookFn = dyn Fn(&HookInvocation) -> HookDecision + Send + Sync + 'static;

/// A running worker: the library's worker handle and the thread serving it.
pub(crate) struct HookWorker {
    worker: u64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HookWorker {
    pub(crate) fn start(handle: u64, callback: &str, f: Arc<HookFn>) -> Result<HookWorker, Error> {
        let hello = pb::HookWorkerHello { callbacks: vec![callback.to_string()] }.encode_to_vec();
        let worker = ffi::hooks_open(handle, hms_agent_sys::HMS_FORMAT_PROTOBUF, &hello)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hms-hook-{callback}"))
            .spawn(move || serve(worker, &s, &*f))
            .map_err(|e| {
                let _ = ffi::stream_close(worker);
                Error::new(crate::error::Code::Internal, format!("starting the hook thread: {e}"))
            })?;
        Ok(HookWorker { worker, stop, thread: Some(thread) })
    }

    /// Stops the worker without waiting for its thread (which ends promptly: closing the
    /// worker wakes its blocked pull).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = ffi::stream_close(self.worker);
    }

    /// Stops the worker and waits for its thread (unless called from that thread).
    pub(crate) fn stop_and_join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn serve(worker: u64, stop: &AtomicBool, f: &HookFn) {
    while !stop.load(Ordering::Acquire) {
        let batch = match ffi::next(worker, 1000, 0) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(_) => return, // closed, or the manager closed
        };
        let bytes = batch.as_slice();
        let mut pos = 0;
        while let Some(Ok(range)) = ffi::next_item(bytes, &mut pos) {
            let Ok(inv) = pb::HookInvocation::decode(&bytes[range]) else { continue };
            let invocation_id = inv.invocation_id.clone();
            let inv = HookInvocation::from(inv);
            let decision = catch_unwind(AssertUnwindSafe(|| f(&inv))).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                HookDecision::Fail(format!("hook panicked: {what}"))
            });
            let mut reply = pb::HookWorkerReply { invocation_id, ..Default::default() };
            match decision {
                HookDecision::Allow => {}
                HookDecision::Veto(reason) => {
                    reply.veto = true;
                    reply.reason = reason;
                }
                HookDecision::Fail(error) => {
                    reply.error = if error.is_empty() { "hook failed".to_string() } else { error };
                }
            }
            // NOT_FOUND: past its deadline already; the failure policy has decided.
            let _ = ffi::hook_complete(worker, &reply.encode_to_vec());
        }
    }
}
