//! `LifecycleManagerFFI`: the manager over the C library, embedded or remote, and its builder.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use serde_json::Value;

use crate::error::{Code, Error};
use crate::ffi;
use crate::proto::agent as pb;

use super::hooks::{HookFn, HookWorker};
use super::*;

pub(crate) const AGENTS: &str = "hms.agent.lifecycle.v1.LifecycleManager/";

macro_rules! method {
    ($name:literal) => {
        // Checked at compile time, not on every call.
        const {
            match CStr::from_bytes_with_nul(concat!("hms.agent.lifecycle.v1.LifecycleManager/", $name, "\0").as_bytes())
            {
                Ok(c) => c,
                Err(_) => panic!("method name"),
            }
        }
    };
}

/// The lifecycle manager over the C library: the core embedded in this process (memory,
/// SQLite or PostgreSQL store) or a server, with the same API and semantics.
///
/// It is `Send + Sync`: share it across threads with `Arc`. [`close`](Self::close) closes it
/// and waits for its hook threads; dropping it closes it without blocking.
///
/// ```
/// use hms_agent::lifecycle::*;
/// use std::sync::Arc;
///
/// let manager = Arc::new(LifecycleManagerFFI::new());
/// manager.register_agent("a1").unwrap();
/// let m = manager.clone();
/// std::thread::spawn(move || m.get_state("a1", false).unwrap()).join().unwrap();
/// Arc::into_inner(manager).unwrap().close().unwrap();
/// ```
pub struct LifecycleManagerFFI {
    handle: u64,
    remote: bool,
    closed: AtomicBool,
    hooks: Mutex<HashMap<String, HookWorker>>,
}

impl std::fmt::Debug for LifecycleManagerFFI {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleManagerFFI").field("handle", &self.handle).field("remote", &self.remote).finish()
    }
}

impl Default for LifecycleManagerFFI {
    fn default() -> Self {
        Self::new()
    }
}

impl LifecycleManagerFFI {
    /// An embedded manager on the memory store.
    ///
    /// # Panics
    /// If the library refuses to open one: a library of another ABI version, or a call in a
    /// process forked after the library started (use [`Builder::open`] to get the error).
    ///
    /// ```
    /// use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let manager = LifecycleManagerFFI::new();
    /// assert!(!manager.is_remote());
    /// ```
    pub fn new() -> Self {
        Self::builder().open().unwrap_or_else(|e| panic!("hms-agent: opening an embedded manager: {e}"))
    }

    /// A builder: store (memory, SQLite, PostgreSQL) or server, and the other settings.
    ///
    /// ```
    /// use hms_agent::lifecycle::LifecycleManagerFFI;
    /// let dir = std::env::temp_dir().join(format!("hms-doc-{}", std::process::id()));
    /// let manager = LifecycleManagerFFI::builder().sqlite(&dir).sqlite_sync("normal").open().unwrap();
    /// manager.register_agent("a1").unwrap();
    /// manager.close().unwrap();
    /// std::fs::remove_dir_all(dir).unwrap();
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Opens a manager from the library's JSON configuration (see `hms_open` in
    /// `capi/hms_lifecycle.h`): `{}` is embedded on memory; `{"endpoint": …}` remote.
    ///
    /// ```
    /// use hms_agent::lifecycle::{Code, LifecycleManagerFFI};
    /// let err = LifecycleManagerFFI::open(r#"{"store": "nowhere"}"#).unwrap_err();
    /// assert_eq!(err.code(), Code::InvalidArgument);
    /// ```
    pub fn open(config: &str) -> Result<Self, Error> {
        let remote = serde_json::from_str::<Value>(config).ok().is_some_and(|v| v.get("endpoint").is_some());
        let handle = ffi::open(config.as_bytes())?;
        Ok(LifecycleManagerFFI { handle, remote, closed: AtomicBool::new(false), hooks: Mutex::new(HashMap::new()) })
    }

    /// Whether it talks to a server.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// assert!(!LifecycleManagerFFI::new().is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Closes the manager: stops its hook workers (waiting for their threads), closes its
    /// streams (their `next` ends with `Unavailable`) and the store, waiting for calls in
    /// flight. Use it (rather than dropping) to release a SQLite data directory at once.
    ///
    /// ```
    /// # use hms_agent::lifecycle::LifecycleManagerFFI;
    /// LifecycleManagerFFI::new().close().unwrap();
    /// ```
    pub fn close(self) -> Result<(), Error> {
        let hooks: Vec<HookWorker> = self.lock_hooks().drain().map(|(_, w)| w).collect();
        for w in hooks {
            w.stop_and_join();
        }
        self.closed.store(true, Ordering::Release);
        ffi::close(self.handle)
    }

    fn lock_hooks(&self) -> std::sync::MutexGuard<'_, HashMap<String, HookWorker>> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls a unary RPC with protobuf messages.
    pub(crate) fn call<Req: Message, Resp: Message + Default>(&self, method: &CStr, req: &Req) -> Result<Resp, Error> {
        self.call_encoded(method, |b| req.encode_raw(b), |b| Ok(Resp::decode(b)?))
    }

    /// Calls a unary RPC whose request `encode` writes, into a buffer reused per thread,
    /// and whose answer `decode` reads.
    fn call_encoded<T>(
        &self,
        method: &CStr,
        encode: impl FnOnce(&mut Vec<u8>),
        decode: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let buf = BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut b) => {
                b.clear();
                encode(&mut b);
                let out = ffi::call(self.handle, method, hms_agent_sys::HMS_FORMAT_PROTOBUF, &b);
                if b.capacity() > 64 * 1024 {
                    *b = Vec::new();
                }
                out
            }
            Err(_) => {
                let mut b = Vec::new();
                encode(&mut b);
                ffi::call(self.handle, method, hms_agent_sys::HMS_FORMAT_PROTOBUF, &b)
            }
        })?;
        decode(buf.as_slice())
    }

    pub(crate) fn watch_raw(&self, method: &CStr, req: &[u8]) -> Result<u64, Error> {
        ffi::watch(self.handle, method, hms_agent_sys::HMS_FORMAT_PROTOBUF, req)
    }

    /// Calls any unary RPC of either service by name (`"hms.agent.lifecycle.v1.LifecycleManager/GetState"`,
    /// or short: `"GetState"` for the agent service), with the request and response in `format`.
    ///
    /// ```
    /// use hms_agent::lifecycle::{Format, LifecycleManagerFFI};
    /// let manager = LifecycleManagerFFI::new();
    /// let out = manager.call_raw("RegisterAgent", Format::Json, br#"{"agentId": "a1"}"#).unwrap();
    /// assert!(String::from_utf8(out).unwrap().contains("LIFECYCLE_STATE_INITIALIZED"));
    /// ```
    pub fn call_raw(&self, method: &str, format: Format, request: &[u8]) -> Result<Vec<u8>, Error> {
        let name = if method.contains('/') { method.to_string() } else { format!("{AGENTS}{method}") };
        let name = CString::new(name).map_err(|_| Error::new(Code::InvalidArgument, "method name contains NUL"))?;
        Ok(ffi::call(self.handle, &name, format as i32, request)?.as_slice().to_vec())
    }

    /// Opens a stream by name (`WatchEvents`, or the plugin service's `WatchPluginEvents`)
    /// with the request in `format`; its items come in the same format.
    ///
    /// ```
    /// use hms_agent::lifecycle::{Format, LifecycleManagerFFI};
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// let mut s = manager.watch_raw_stream("WatchEvents", Format::Json, br#"{"fromSequence": "1"}"#).unwrap();
    /// let item = s.next_timeout(std::time::Duration::from_secs(10)).unwrap().unwrap();
    /// assert!(String::from_utf8(item).unwrap().contains("\"agentId\":\"a1\""));
    /// ```
    pub fn watch_raw_stream(&self, method: &str, format: Format, request: &[u8]) -> Result<RawEventStream, Error> {
        let name = if method.contains('/') {
            method.to_string()
        } else if method == "WatchPluginEvents" {
            format!("{}{method}", crate::plugins::PLUGINS)
        } else {
            format!("{AGENTS}{method}")
        };
        let name = CString::new(name).map_err(|_| Error::new(Code::InvalidArgument, "method name contains NUL"))?;
        let h = ffi::watch(self.handle, &name, format as i32, request)?;
        Ok(RawEventStream::new(h))
    }

    /// Registers an agent (state Initialized).
    ///
    /// Errors: `AlreadyExists` when the id is taken; `InvalidArgument` for a bad id.
    ///
    /// ```
    /// use hms_agent::lifecycle::{Code, LifecycleManagerFFI};
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("agent-001").unwrap();
    /// assert_eq!(manager.register_agent("agent-001").unwrap_err().code(), Code::AlreadyExists);
    /// ```
    pub fn register_agent(&self, agent_id: &str) -> Result<RegisterAgentResponse, Error> {
        self.register_agent_with(agent_id, RegisterAgentOptions::default())
    }

    /// Registers an agent with metadata, labels and a supervision policy.
    ///
    /// ```
    /// use hms_agent::lifecycle::{LifecycleManagerFFI, RegisterAgentOptions};
    /// let manager = LifecycleManagerFFI::new();
    /// let mut o = RegisterAgentOptions::default();
    /// o.metadata.insert("owner".into(), "ops".into());
    /// let r = manager.register_agent_with("a1", o).unwrap();
    /// assert_eq!(r.agent.metadata["owner"], "ops");
    /// ```
    pub fn register_agent_with(
        &self,
        agent_id: &str,
        options: RegisterAgentOptions,
    ) -> Result<RegisterAgentResponse, Error> {
        let req = pb::RegisterAgentRequest {
            agent_id: agent_id.to_string(),
            metadata: options.metadata,
            labels: options.labels,
            supervision_policy: options.supervision_policy,
        };
        let r: pb::RegisterAgentResponse = self.call(method!("RegisterAgent"), &req)?;
        Ok(RegisterAgentResponse {
            agent: r.agent.unwrap_or_default().into(),
            event: r.event.unwrap_or_default().into(),
        })
    }

    /// A page of agents, filtered by state and labels, in id order.
    ///
    /// ```
    /// use hms_agent::lifecycle::{LifecycleManagerFFI, ListAgentsRequest};
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// manager.register_agent("a2").unwrap();
    /// let page = manager.list_agents(ListAgentsRequest::default()).unwrap();
    /// assert_eq!(page.agents.len(), 2);
    /// ```
    pub fn list_agents(&self, request: ListAgentsRequest) -> Result<ListAgentsResponse, Error> {
        let req = pb::ListAgentsRequest {
            states: request.states.into_iter().map(LifecycleState::to_i32).collect(),
            label_selector: request.label_selector,
            page_size: request.page_size,
            page_token: request.page_token,
        };
        let r: pb::ListAgentsResponse = self.call(method!("ListAgents"), &req)?;
        Ok(ListAgentsResponse {
            agents: r.agents.into_iter().map(Into::into).collect(),
            next_page_token: r.next_page_token,
        })
    }

    /// A transition with preconditions (`expected_state`, `expected_revision`) or error
    /// details: the options beyond the specification's six fields.
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// let r = manager
    ///     .transition_state_with(
    ///         TransitionRequest::new("a1", LifecycleState::Active),
    ///         TransitionOptions { expected_state: LifecycleState::Initialized, ..Default::default() },
    ///     )
    ///     .unwrap();
    /// assert!(r.success);
    /// ```
    pub fn transition_state_with(
        &self,
        request: TransitionRequest,
        options: TransitionOptions,
    ) -> Result<TransitionResponse, Error> {
        let req = request.into_proto(options);
        self.call_encoded(method!("TransitionState"), |b| req.encode_raw(b), decode::transition)
    }

    /// Every event matching the request, page after page, as an iterator (the request's
    /// `limit` is the page size).
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// for i in 0..5 {
    ///     manager.register_agent(&format!("a{i}")).unwrap();
    /// }
    /// let all: Vec<_> = manager
    ///     .history(GetHistoryRequest { limit: 2, ..Default::default() })
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(all.len(), 5);
    /// ```
    pub fn history(&self, request: GetHistoryRequest) -> History<'_> {
        History { manager: self, request: Some(request), page: Vec::new().into_iter() }
    }

    /// Removes a hook. Errors: `NotFound`.
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// let h = manager.register_hook(RegisterHookRequest::callback("h", "cb")).unwrap();
    /// manager.unregister_hook(&h.hook_id).unwrap();
    /// assert!(manager.list_hooks().unwrap().is_empty());
    /// ```
    pub fn unregister_hook(&self, hook_id: &str) -> Result<(), Error> {
        let _: pb::UnregisterHookResponse =
            self.call(method!("UnregisterHook"), &pb::UnregisterHookRequest { hook_id: hook_id.to_string() })?;
        Ok(())
    }

    /// The registered hooks with their statistics.
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_hook(RegisterHookRequest::callback("h", "cb")).unwrap();
    /// assert_eq!(manager.list_hooks().unwrap()[0].spec.hook_name, "h");
    /// ```
    pub fn list_hooks(&self) -> Result<Vec<HookInfo>, Error> {
        let r: pb::ListHooksResponse = self.call(method!("ListHooks"), &pb::ListHooksRequest {})?;
        Ok(r.hooks.into_iter().map(Into::into).collect())
    }

    /// Reports agents alive; returns the ids the manager does not know (or terminated).
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// assert_eq!(manager.heartbeat(&["a1", "ghost"]).unwrap(), vec!["ghost".to_string()]);
    /// ```
    pub fn heartbeat(&self, agent_ids: &[&str]) -> Result<Vec<String>, Error> {
        let req = pb::HeartbeatRequest { agent_ids: agent_ids.iter().map(|s| s.to_string()).collect() };
        let r: pb::HeartbeatResponse = self.call(method!("Heartbeat"), &req)?;
        Ok(r.unknown_agent_ids)
    }

    /// Deletes an agent in a terminal state (TERMINATED): its record goes, its history
    /// stays until retention removes it, and its id is never used again. Returns the
    /// deletion event (TERMINATED → Unspecified), which watchers see too. An agent in any
    /// other state is refused with [`Code::FailedPrecondition`](crate::lifecycle::Code).
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// assert_eq!(manager.delete_agent("a1", "").unwrap_err().code(), Code::FailedPrecondition);
    /// manager.transition_state(TransitionRequest::new("a1", LifecycleState::Terminated)).unwrap();
    /// let event = manager.delete_agent("a1", "decommissioned").unwrap();
    /// assert_eq!(event.new_state, LifecycleState::Unspecified);
    /// assert_eq!(manager.get_state("a1", false).unwrap_err().code(), Code::NotFound);
    /// assert_eq!(manager.register_agent("a1").unwrap_err().code(), Code::AlreadyExists);
    /// ```
    pub fn delete_agent(&self, agent_id: &str, reason: &str) -> Result<LifecycleEvent, Error> {
        let req = pb::DeleteAgentRequest { agent_id: agent_id.to_string(), reason: reason.to_string() };
        let r: pb::DeleteAgentResponse = self.call(method!("DeleteAgent"), &req)?;
        Ok(r.event.unwrap_or_default().into())
    }

    /// Sets an agent's supervision policy (`None`: follow the manager's default again).
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// use hms_agent::proto::agent::SupervisionPolicy;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// let policy = SupervisionPolicy { heartbeat_timeout_ms: 30_000, ..Default::default() };
    /// let status = manager.set_supervision_policy("a1", Some(policy)).unwrap();
    /// assert_eq!(status.policy.unwrap().heartbeat_timeout_ms, 30_000);
    /// ```
    pub fn set_supervision_policy(
        &self,
        agent_id: &str,
        policy: Option<pb::SupervisionPolicy>,
    ) -> Result<pb::SupervisionStatus, Error> {
        let req = pb::SetSupervisionPolicyRequest { agent_id: agent_id.to_string(), policy };
        let r: pb::SetSupervisionPolicyResponse = self.call(method!("SetSupervisionPolicy"), &req)?;
        Ok(r.supervision.unwrap_or_default())
    }

    /// Serves the callback hooks named `callback` (hooks registered with config
    /// `{"type": "callback", "callback": callback}`) with `hook`, on a thread of this crate
    /// that pulls invocations from the library. A panic in `hook` is caught and becomes a
    /// failure of the hook, which its `failure_policy` decides. Invocations of one callback
    /// are answered one at a time. The same code serves embedded and remote managers.
    ///
    /// Errors: `AlreadyExists` when the callback is served already.
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.serve_hook("gate", |inv| {
    ///     if inv.event.reason.is_empty() { HookDecision::Veto("say why".into()) } else { HookDecision::Allow }
    /// }).unwrap();
    /// manager
    ///     .register_hook(RegisterHookRequest { is_blocking: true, ..RegisterHookRequest::callback("gate", "gate") })
    ///     .unwrap();
    /// manager.register_agent("a1").unwrap();
    /// let r = manager.transition_state(TransitionRequest::new("a1", LifecycleState::Active)).unwrap();
    /// assert_eq!(r.refusal_reason, RefusalReason::HookVetoed);
    /// let r = manager.transition_state(TransitionRequest::new("a1", LifecycleState::Active).reason("go")).unwrap();
    /// assert!(r.success);
    /// manager.close().unwrap();
    /// ```
    pub fn serve_hook<F>(&self, callback: &str, hook: F) -> Result<(), Error>
    where
        F: Fn(&HookInvocation) -> HookDecision + Send + Sync + 'static,
    {
        let mut hooks = self.lock_hooks();
        if hooks.contains_key(callback) {
            return Err(Error::new(Code::AlreadyExists, format!("callback {callback:?} is served already")));
        }
        let f: Arc<HookFn> = Arc::new(hook);
        let worker = HookWorker::start(self.handle, callback, f)?;
        hooks.insert(callback.to_string(), worker);
        Ok(())
    }

    /// Stops serving `callback` (waiting for its thread, unless called from a hook); its
    /// pending invocations fail. Returns whether it was served.
    ///
    /// ```
    /// use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// manager.serve_hook("cb", |_| HookDecision::Allow).unwrap();
    /// assert!(manager.stop_hook("cb"));
    /// assert!(!manager.stop_hook("cb"));
    /// ```
    pub fn stop_hook(&self, callback: &str) -> bool {
        let w = self.lock_hooks().remove(callback);
        match w {
            Some(w) => {
                w.stop_and_join();
                true
            }
            None => false,
        }
    }

    /// The plugin service (discovery, validation, versions, running plugins).
    ///
    /// ```
    /// use hms_agent::lifecycle::LifecycleManagerFFI;
    /// use hms_agent::proto::plugin::ListPluginsRequest;
    /// let manager = LifecycleManagerFFI::new();
    /// assert!(manager.plugins().list(ListPluginsRequest::default()).unwrap().plugins.is_empty());
    /// ```
    pub fn plugins(&self) -> crate::plugins::Plugins<'_> {
        crate::plugins::Plugins::new(self)
    }
}

impl LifecycleManager for LifecycleManagerFFI {
    fn get_state(&self, agent_id: &str, include_details: bool) -> Result<GetStateResponse, Error> {
        // GetStateRequest, written without copying the id: 1: agent_id, 2: include_details.
        self.call_encoded(
            method!("GetState"),
            |b| {
                use prost::encoding::{WireType, encode_key, encode_varint};
                if !agent_id.is_empty() {
                    encode_key(1, WireType::LengthDelimited, b);
                    encode_varint(agent_id.len() as u64, b);
                    b.extend_from_slice(agent_id.as_bytes());
                }
                if include_details {
                    encode_key(2, WireType::Varint, b);
                    b.push(1);
                }
            },
            decode::get_state,
        )
    }

    fn transition_state(&self, request: TransitionRequest) -> Result<TransitionResponse, Error> {
        self.transition_state_with(request, TransitionOptions::default())
    }

    fn get_transition_history(&self, request: GetHistoryRequest) -> Result<GetHistoryResponse, Error> {
        let r: pb::GetHistoryResponse =
            self.call(method!("GetTransitionHistory"), &pb::GetHistoryRequest::from(request))?;
        Ok(r.into())
    }

    fn watch_events(&self, request: WatchEventsRequest) -> Result<EventStream, Error> {
        let from = request.from_sequence;
        let req = pb::WatchEventsRequest::from(request).encode_to_vec();
        let h = self.watch_raw(method!("WatchEvents"), &req)?;
        Ok(EventStream::new(h, from))
    }

    fn register_hook(&self, request: RegisterHookRequest) -> Result<RegisterHookResponse, Error> {
        let r: pb::RegisterHookResponse =
            self.call(method!("RegisterHook"), &pb::RegisterHookRequest::from(request))?;
        Ok(r.into())
    }
}

impl Drop for LifecycleManagerFFI {
    /// Best-effort and never blocking: stops the hook workers (their threads end on their
    /// own) and closes the manager on a short-lived thread. Idempotent with `close`.
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for (_, mut w) in self.lock_hooks().drain() {
            w.stop();
        }
        let handle = self.handle;
        let spawned = std::thread::Builder::new().name("hms-close".into()).spawn(move || {
            let _ = ffi::close(handle);
        });
        if spawned.is_err() {
            let _ = ffi::close(handle);
        }
    }
}

/// Every event of a history query, fetched page by page ([`LifecycleManagerFFI::history`]).
/// An error ends the iteration after it is returned.
///
/// ```
/// use hms_agent::lifecycle::*;
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let mut it = manager.history(GetHistoryRequest { agent_id: "a1".into(), ..Default::default() });
/// assert!(it.next().unwrap().is_ok());
/// assert!(it.next().is_none());
/// ```
pub struct History<'a> {
    manager: &'a LifecycleManagerFFI,
    request: Option<GetHistoryRequest>,
    page: std::vec::IntoIter<LifecycleEvent>,
}

impl Iterator for History<'_> {
    type Item = Result<LifecycleEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.page.next() {
                return Some(Ok(e));
            }
            let mut req = self.request.take()?;
            match self.manager.get_transition_history(req.clone()) {
                Ok(page) => {
                    if !page.next_page_token.is_empty() {
                        req.page_token = page.next_page_token;
                        self.request = Some(req);
                    }
                    self.page = page.events.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
