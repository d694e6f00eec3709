//! The specification's types (section 3.1) and the other messages of the agent service, as
//! plain Rust values, with their conversions to and from the protobuf messages.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::proto::agent as pb;

/// Converts a protobuf timestamp (a missing one is `None`).
pub(crate) fn time_from(ts: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32))
}

pub(crate) fn time_to(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(|t| prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

macro_rules! proto_enum {
    ($(#[$m:meta])* $name:ident, $pb:ty, { $($(#[$vm:meta])* $variant:ident = $pbv:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// The value for a protobuf enum number (an unknown number is `Unspecified`).
            pub fn from_i32(v: i32) -> $name {
                match <$pb>::try_from(v) {
                    $(Ok(<$pb>::$pbv) => $name::$variant,)*
                    #[allow(unreachable_patterns)]
                    _ => $name::Unspecified,
                }
            }

            /// The protobuf enum number.
            pub fn to_i32(self) -> i32 {
                match self {
                    $($name::$variant => <$pb>::$pbv as i32,)*
                }
            }

            /// The protobuf value's full name, as protojson writes it.
            pub fn proto_name(self) -> &'static str {
                match self {
                    $($name::$variant => <$pb>::$pbv.as_str_name(),)*
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Unspecified
            }
        }
    };
}

proto_enum!(
    /// The state of an agent in its lifecycle (specification §2.1).
    ///
    /// ```
    /// use hms_agent::lifecycle::LifecycleState;
    /// assert_eq!(LifecycleState::Active.to_i32(), 2);
    /// assert_eq!(LifecycleState::from_i32(7), LifecycleState::Maintenance);
    /// assert_eq!(LifecycleState::ShuttingDown.proto_name(), "LIFECYCLE_STATE_SHUTTING_DOWN");
    /// ```
    LifecycleState, pb::LifecycleState, {
    /// Unknown state.
    Unspecified = Unspecified,
    /// Initialized but not yet active.
    Initialized = Initialized,
    /// Active and processing tasks.
    Active = Active,
    /// Paused (will resume from the current state).
    Paused = Paused,
    /// Suspended (may need recovery to resume).
    Suspended = Suspended,
    /// Shutting down.
    ShuttingDown = ShuttingDown,
    /// Terminated (terminal).
    Terminated = Terminated,
    /// In maintenance mode.
    Maintenance = Maintenance,
    /// In error.
    Error = Error,
    /// Upgrading.
    Upgrading = Upgrading,
    /// Recovering from error or suspension.
    Recovering = Recovering,
});

proto_enum!(
    /// The type of a transition, always decided by the core.
    ///
    /// ```
    /// use hms_agent::lifecycle::TransitionType;
    /// assert_eq!(TransitionType::from_i32(2), TransitionType::Forced);
    /// ```
    TransitionType, pb::TransitionType, {
    /// Unknown.
    Unspecified = Unspecified,
    /// A transition the table allows.
    Normal = Normal,
    /// A forced transition (an edge the table does not allow).
    Forced = Forced,
    /// Initiated by the system itself (supervision).
    Automatic = Automatic,
    /// Into ERROR.
    ErrorTriggered = ErrorTriggered,
    /// Into or out of MAINTENANCE.
    Maintenance = Maintenance,
});

proto_enum!(
    /// Why the lifecycle refused a transition (`TransitionResponse::success == false`).
    ///
    /// ```
    /// use hms_agent::lifecycle::RefusalReason;
    /// assert_eq!(RefusalReason::default(), RefusalReason::Unspecified);
    /// ```
    RefusalReason, pb::RefusalReason, {
    /// Not refused.
    Unspecified = Unspecified,
    /// The edge is not in the transition table (including a transition to the current state).
    InvalidTransition = InvalidTransition,
    /// `expected_state` or `expected_revision` did not match.
    PreconditionFailed = PreconditionFailed,
    /// A blocking hook vetoed the transition.
    HookVetoed = HookVetoed,
    /// A blocking hook with failure_policy=fail errored or timed out.
    HookFailed = HookFailed,
    /// Another transition of the agent kept it busy past `timeout_ms`.
    TimedOut = TimedOut,
    /// The agent is in a terminal state.
    Terminal = Terminal,
});

proto_enum!(
    /// What one hook invocation came to.
    ///
    /// ```
    /// use hms_agent::lifecycle::HookResult;
    /// assert_eq!(HookResult::from_i32(2), HookResult::Vetoed);
    /// ```
    HookResult, pb::hook_outcome::Result, {
    /// Unknown.
    Unspecified = Unspecified,
    /// The hook allowed the transition.
    Allowed = Allowed,
    /// The hook vetoed it.
    Vetoed = Vetoed,
    /// The hook failed.
    Failed = Failed,
    /// The hook did not answer in time.
    TimedOut = TimedOut,
});

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

fn states_from(v: Vec<i32>) -> Vec<LifecycleState> {
    v.into_iter().map(LifecycleState::from_i32).collect()
}

/// An event of an agent's lifecycle (specification §2.2): the specification's nine fields,
/// then the store-wide `sequence` (the watch resume point), the agent's `revision`, error
/// details, the blocking hooks' outcomes and the `bookmark` flag of watch bookmarks.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleManager, LifecycleManagerFFI, LifecycleState, GetHistoryRequest};
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let history = manager
///     .get_transition_history(GetHistoryRequest { agent_id: "a1".into(), ..Default::default() })
///     .unwrap();
/// let event = &history.events[0];
/// assert_eq!((event.previous_state, event.new_state), (LifecycleState::Unspecified, LifecycleState::Initialized));
/// assert_eq!(event.sequence, 1);
/// ```
#[derive(Debug, Clone)]
pub struct LifecycleEvent {
    /// Unique event id (UUIDv7).
    pub event_id: String,
    /// The agent.
    pub agent_id: String,
    /// The state before (Unspecified for the registration event).
    pub previous_state: LifecycleState,
    /// The state after.
    pub new_state: LifecycleState,
    /// The transition's type.
    pub transition_type: TransitionType,
    /// When it happened (the Unix epoch for a bookmark).
    pub timestamp: DateTime<Utc>,
    /// The principal that initiated it.
    pub initiated_by: String,
    /// Why.
    pub reason: String,
    /// Additional data.
    pub metadata: HashMap<String, String>,
    /// Store-wide, gap-free, increasing position: watch from `sequence + 1` to resume.
    pub sequence: u64,
    /// The agent's revision after the event.
    pub revision: i64,
    /// Error details of a transition into ERROR.
    pub error_info: Option<ErrorInfo>,
    /// The outcome of every blocking hook that ran before the transition.
    pub hook_outcomes: Vec<HookOutcome>,
    /// A watch bookmark: only `sequence` is set.
    pub bookmark: bool,
}

impl From<pb::LifecycleEvent> for LifecycleEvent {
    fn from(e: pb::LifecycleEvent) -> Self {
        LifecycleEvent {
            event_id: e.event_id,
            agent_id: e.agent_id,
            previous_state: LifecycleState::from_i32(e.previous_state),
            new_state: LifecycleState::from_i32(e.new_state),
            transition_type: TransitionType::from_i32(e.transition_type),
            timestamp: time_from(e.timestamp).unwrap_or(DateTime::UNIX_EPOCH),
            initiated_by: e.initiated_by,
            reason: e.reason,
            metadata: e.metadata,
            sequence: e.sequence,
            revision: e.revision,
            error_info: e.error_info.map(Into::into),
            hook_outcomes: e.hook_outcomes.into_iter().map(Into::into).collect(),
            bookmark: e.bookmark,
        }
    }
}

/// Error details of an agent in ERROR.
///
/// ```
/// use hms_agent::lifecycle::ErrorInfo;
/// let info = ErrorInfo { code: 42, message: "disk full".into(), is_recoverable: true, ..Default::default() };
/// assert!(info.timestamp.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Error code.
    pub code: i32,
    /// Error message.
    pub message: String,
    /// When it happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// Whether it is recoverable.
    pub is_recoverable: bool,
    /// Recovery actions that can be taken.
    pub recovery_actions: Vec<String>,
}

impl From<pb::ErrorInfo> for ErrorInfo {
    fn from(e: pb::ErrorInfo) -> Self {
        ErrorInfo {
            code: e.code,
            message: e.message,
            timestamp: time_from(e.timestamp),
            is_recoverable: e.is_recoverable,
            recovery_actions: e.recovery_actions,
        }
    }
}

impl From<ErrorInfo> for pb::ErrorInfo {
    fn from(e: ErrorInfo) -> Self {
        pb::ErrorInfo {
            code: e.code,
            message: e.message,
            timestamp: time_to(e.timestamp),
            is_recoverable: e.is_recoverable,
            recovery_actions: e.recovery_actions,
        }
    }
}

/// What one blocking hook did to a transition.
///
/// ```
/// use hms_agent::lifecycle::{HookOutcome, HookResult};
/// let o = HookOutcome { result: HookResult::Vetoed, ..Default::default() };
/// assert_eq!(o.result, HookResult::Vetoed);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookOutcome {
    /// The hook.
    pub hook_id: String,
    /// Its name.
    pub hook_name: String,
    /// What it came to.
    pub result: HookResult,
    /// The veto reason or the error.
    pub message: String,
    /// How long it took, in microseconds.
    pub latency_us: i64,
    /// Whether the outcome decided the transition.
    pub enforced: bool,
}

impl From<pb::HookOutcome> for HookOutcome {
    fn from(o: pb::HookOutcome) -> Self {
        HookOutcome {
            hook_id: o.hook_id,
            hook_name: o.hook_name,
            result: HookResult::from_i32(o.result),
            message: o.message,
            latency_us: o.latency_us,
            enforced: o.enforced,
        }
    }
}

/// An agent's state (`get_state`), also an element of `list_agents`.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleManager, LifecycleManagerFFI, LifecycleState};
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let s = manager.get_state("a1", true).unwrap();
/// assert_eq!(s.state, LifecycleState::Initialized);
/// assert_eq!(s.revision, 1);
/// assert!(s.allowed_next_states.contains(&LifecycleState::Active));
/// ```
#[derive(Debug, Clone, Default)]
pub struct GetStateResponse {
    /// The current state.
    pub state: LifecycleState,
    /// Time spent in the current state, in milliseconds.
    pub time_in_state_ms: i64,
    /// The state before.
    pub previous_state: LifecycleState,
    /// The agent's metadata (with `include_details`).
    pub metadata: HashMap<String, String>,
    /// Whether a transition is in flight.
    pub is_transitioning: bool,
    /// When the last transition happened.
    pub last_transition: Option<DateTime<Utc>>,
    /// Error details when in ERROR.
    pub error_info: Option<ErrorInfo>,
    /// The agent.
    pub agent_id: String,
    /// Incremented by every transition (see [`TransitionOptions::expected_revision`](super::TransitionOptions)).
    pub revision: i64,
    /// Labels given at registration (with `include_details`).
    pub labels: HashMap<String, String>,
    /// When the agent was registered.
    pub created_at: Option<DateTime<Utc>>,
    /// The states the agent may move to next.
    pub allowed_next_states: Vec<LifecycleState>,
    /// Sequence of the agent's last event.
    pub last_sequence: u64,
    /// Its supervision: policy, next automatic action, recoveries.
    pub supervision: Option<pb::SupervisionStatus>,
}

impl From<pb::GetStateResponse> for GetStateResponse {
    fn from(r: pb::GetStateResponse) -> Self {
        GetStateResponse {
            state: LifecycleState::from_i32(r.state),
            time_in_state_ms: r.time_in_state_ms,
            previous_state: LifecycleState::from_i32(r.previous_state),
            metadata: r.metadata,
            is_transitioning: r.is_transitioning,
            last_transition: time_from(r.last_transition),
            error_info: r.error_info.map(Into::into),
            agent_id: r.agent_id,
            revision: r.revision,
            labels: r.labels,
            created_at: time_from(r.created_at),
            allowed_next_states: states_from(r.allowed_next_states),
            last_sequence: r.last_sequence,
            supervision: r.supervision,
        }
    }
}

/// A request to move an agent to another state: exactly the specification's six fields.
/// Preconditions and error details go in [`TransitionOptions`] with
/// [`LifecycleManagerFFI::transition_state_with`](super::LifecycleManagerFFI::transition_state_with).
///
/// ```
/// use hms_agent::lifecycle::{LifecycleState, TransitionRequest};
/// let r = TransitionRequest::new("agent-001", LifecycleState::Paused).reason("lunch");
/// assert_eq!(r.reason, "lunch");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionRequest {
    /// The agent.
    pub agent_id: String,
    /// The state to move to.
    pub target_state: LifecycleState,
    /// Allow an edge the table does not (never out of a terminal state).
    pub force: bool,
    /// Why (recorded in the event).
    pub reason: String,
    /// How long to wait for the agent's previous transition and the blocking hooks (0: the
    /// default).
    pub timeout_ms: i32,
    /// Additional data, recorded in the event.
    pub metadata: HashMap<String, String>,
}

impl TransitionRequest {
    /// A request for `agent_id` to move to `target_state`, other fields zero.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{LifecycleState, TransitionRequest};
    /// let r = TransitionRequest::new("a", LifecycleState::Active);
    /// assert!(!r.force);
    /// ```
    pub fn new(agent_id: impl Into<String>, target_state: LifecycleState) -> Self {
        TransitionRequest { agent_id: agent_id.into(), target_state, ..Default::default() }
    }

    /// With this reason.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{LifecycleState, TransitionRequest};
    /// assert_eq!(TransitionRequest::new("a", LifecycleState::Active).reason("go").reason, "go");
    /// ```
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Forced.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{LifecycleState, TransitionRequest};
    /// assert!(TransitionRequest::new("a", LifecycleState::Upgrading).force().force);
    /// ```
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    pub(crate) fn into_proto(self, o: TransitionOptions) -> pb::TransitionRequest {
        pb::TransitionRequest {
            agent_id: self.agent_id,
            target_state: self.target_state.to_i32(),
            force: self.force,
            reason: self.reason,
            timeout_ms: self.timeout_ms,
            metadata: self.metadata,
            expected_state: o.expected_state.to_i32(),
            expected_revision: o.expected_revision,
            error_info: o.error_info.map(Into::into),
        }
    }
}

/// The options of a transition beyond the specification's six fields.
///
/// ```
/// use hms_agent::lifecycle::*;
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let r = manager
///     .transition_state_with(
///         TransitionRequest::new("a1", LifecycleState::Active),
///         TransitionOptions { expected_revision: 7, ..Default::default() },
///     )
///     .unwrap();
/// assert!(!r.success);
/// assert_eq!(r.refusal_reason, RefusalReason::PreconditionFailed);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionOptions {
    /// Only if the agent is in this state (Unspecified: any).
    pub expected_state: LifecycleState,
    /// Only if the agent's revision is this one (0: any).
    pub expected_revision: i64,
    /// Error details, for a transition into ERROR.
    pub error_info: Option<ErrorInfo>,
}

/// The answer to a transition. A refusal is an answer: `success == false`, the state
/// unchanged, `refusal_reason` and `error_message` say why.
///
/// ```
/// use hms_agent::lifecycle::*;
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let r = manager.transition_state(TransitionRequest::new("a1", LifecycleState::Terminated)).unwrap();
/// assert!(r.success, "{:?}", r.error_message);
/// let r = manager.transition_state(TransitionRequest::new("a1", LifecycleState::Active)).unwrap();
/// assert!(!r.success);
/// assert_eq!(r.refusal_reason, RefusalReason::Terminal);
/// assert!(r.error_message.is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TransitionResponse {
    /// Whether the agent moved.
    pub success: bool,
    /// The state before.
    pub previous_state: LifecycleState,
    /// The state after the attempt.
    pub current_state: LifecycleState,
    /// The event of the transition.
    pub event: Option<LifecycleEvent>,
    /// Why it was refused.
    pub error_message: Option<String>,
    /// Why it was refused, for programs.
    pub refusal_reason: RefusalReason,
    /// The states the agent may move to next.
    pub allowed_next_states: Vec<LifecycleState>,
    /// The outcome of every blocking hook that ran.
    pub hook_outcomes: Vec<HookOutcome>,
    /// The agent's revision after the attempt.
    pub revision: i64,
}

impl From<pb::TransitionResponse> for TransitionResponse {
    fn from(r: pb::TransitionResponse) -> Self {
        TransitionResponse {
            success: r.success,
            previous_state: LifecycleState::from_i32(r.previous_state),
            current_state: LifecycleState::from_i32(r.current_state),
            event: r.event.map(Into::into),
            error_message: (!r.error_message.is_empty()).then_some(r.error_message),
            refusal_reason: RefusalReason::from_i32(r.refusal_reason),
            allowed_next_states: states_from(r.allowed_next_states),
            hook_outcomes: r.hook_outcomes.into_iter().map(Into::into).collect(),
            revision: r.revision,
        }
    }
}

/// A page of an agent's (or every agent's) history.
///
/// ```
/// use hms_agent::lifecycle::{GetHistoryRequest, TransitionType};
/// let r = GetHistoryRequest { agent_id: "a1".into(), limit: 10, ..Default::default() };
/// assert_eq!(r.transition_type, TransitionType::Unspecified);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetHistoryRequest {
    /// The agent (empty: every agent).
    pub agent_id: String,
    /// Page size (0: 100, at most 1000).
    pub limit: i32,
    /// Only this type (Unspecified: any).
    pub transition_type: TransitionType,
    /// From this time (inclusive).
    pub start_time: Option<DateTime<Utc>>,
    /// Up to this time (exclusive).
    pub end_time: Option<DateTime<Utc>>,
    /// The previous page's `next_page_token`.
    pub page_token: String,
}

impl From<GetHistoryRequest> for pb::GetHistoryRequest {
    fn from(r: GetHistoryRequest) -> Self {
        pb::GetHistoryRequest {
            agent_id: r.agent_id,
            limit: r.limit,
            transition_type: r.transition_type.to_i32(),
            start_time: time_to(r.start_time),
            end_time: time_to(r.end_time),
            page_token: r.page_token,
        }
    }
}

/// One page of history, in chronological order.
///
/// ```
/// use hms_agent::lifecycle::GetHistoryResponse;
/// assert!(GetHistoryResponse::default().next_page_token.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct GetHistoryResponse {
    /// The events.
    pub events: Vec<LifecycleEvent>,
    /// The next page's token (empty on the last page).
    pub next_page_token: String,
}

impl From<pb::GetHistoryResponse> for GetHistoryResponse {
    fn from(r: pb::GetHistoryResponse) -> Self {
        GetHistoryResponse {
            events: r.events.into_iter().map(Into::into).collect(),
            next_page_token: r.next_page_token,
        }
    }
}

/// What to watch: filters and the resume point.
///
/// ```
/// use hms_agent::lifecycle::WatchEventsRequest;
/// let r = WatchEventsRequest { agent_id: "agent-001".into(), from_sequence: 1, ..Default::default() };
/// assert!(r.states.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchEventsRequest {
    /// The agent (empty: every agent).
    pub agent_id: String,
    /// Only events into these states (empty: any).
    pub states: Vec<LifecycleState>,
    /// Only these transition types (empty: any).
    pub transition_types: Vec<TransitionType>,
    /// First the stored events from this sequence, then live (0: only new events).
    pub from_sequence: u64,
    /// A bookmark at most this often while the filter hides newer events (0: none).
    pub bookmark_interval_ms: i32,
}

impl From<WatchEventsRequest> for pb::WatchEventsRequest {
    fn from(r: WatchEventsRequest) -> Self {
        pb::WatchEventsRequest {
            agent_id: r.agent_id,
            states: r.states.into_iter().map(LifecycleState::to_i32).collect(),
            transition_types: r.transition_types.into_iter().map(TransitionType::to_i32).collect(),
            from_sequence: r.from_sequence,
            bookmark_interval_ms: r.bookmark_interval_ms,
        }
    }
}

/// A hook to register: what triggers it and how it runs. `config["type"]` is `"callback"`
/// (served by a worker, see [`LifecycleManagerFFI::serve_hook`](super::LifecycleManagerFFI::serve_hook))
/// or `"webhook"`.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleState, RegisterHookRequest};
/// let r = RegisterHookRequest {
///     trigger_states: vec![LifecycleState::Active],
///     is_blocking: true,
///     ..RegisterHookRequest::callback("gate", "gate")
/// };
/// assert_eq!(r.config["callback"], "gate");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterHookRequest {
    /// The hook's name.
    pub hook_name: String,
    /// Target states that trigger it (empty: any).
    pub trigger_states: Vec<LifecycleState>,
    /// Transition types that trigger it (empty: any).
    pub trigger_transitions: Vec<TransitionType>,
    /// Runs before the transition and may veto it.
    pub is_blocking: bool,
    /// How long it may take, in milliseconds.
    pub timeout_ms: i32,
    /// `type`, `callback`, `failure_policy` (`fail` | `ignore`), `max_attempts`, webhook
    /// settings.
    pub config: HashMap<String, String>,
    /// Only for these agents (empty: every agent).
    pub agent_ids: Vec<String>,
}

impl RegisterHookRequest {
    /// A callback hook named `hook_name`, served by the worker of `callback`.
    ///
    /// ```
    /// # use hms_agent::lifecycle::RegisterHookRequest;
    /// assert_eq!(RegisterHookRequest::callback("h", "cb").config["type"], "callback");
    /// ```
    pub fn callback(hook_name: impl Into<String>, callback: impl Into<String>) -> Self {
        let mut config = HashMap::new();
        config.insert("type".to_string(), "callback".to_string());
        config.insert("callback".to_string(), callback.into());
        RegisterHookRequest { hook_name: hook_name.into(), config, ..Default::default() }
    }
}

impl From<RegisterHookRequest> for pb::RegisterHookRequest {
    fn from(r: RegisterHookRequest) -> Self {
        pb::RegisterHookRequest {
            hook_name: r.hook_name,
            trigger_states: r.trigger_states.into_iter().map(LifecycleState::to_i32).collect(),
            trigger_transitions: r.trigger_transitions.into_iter().map(TransitionType::to_i32).collect(),
            is_blocking: r.is_blocking,
            timeout_ms: r.timeout_ms,
            config: r.config,
            agent_ids: r.agent_ids,
        }
    }
}

impl From<pb::RegisterHookRequest> for RegisterHookRequest {
    fn from(r: pb::RegisterHookRequest) -> Self {
        RegisterHookRequest {
            hook_name: r.hook_name,
            trigger_states: states_from(r.trigger_states),
            trigger_transitions: r.trigger_transitions.into_iter().map(TransitionType::from_i32).collect(),
            is_blocking: r.is_blocking,
            timeout_ms: r.timeout_ms,
            config: r.config,
            agent_ids: r.agent_ids,
        }
    }
}

/// The answer to a hook registration.
///
/// ```
/// use hms_agent::lifecycle::RegisterHookResponse;
/// assert!(RegisterHookResponse::default().error_message.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterHookResponse {
    /// Whether it was registered.
    pub success: bool,
    /// The hook's id.
    pub hook_id: String,
    /// Why not.
    pub error_message: Option<String>,
}

impl From<pb::RegisterHookResponse> for RegisterHookResponse {
    fn from(r: pb::RegisterHookResponse) -> Self {
        RegisterHookResponse {
            success: r.success,
            hook_id: r.hook_id,
            error_message: (!r.error_message.is_empty()).then_some(r.error_message),
        }
    }
}

/// A registered hook and its delivery statistics (`list_hooks`).
///
/// ```
/// use hms_agent::lifecycle::HookInfo;
/// assert_eq!(HookInfo::default().invocations, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct HookInfo {
    /// The hook's id.
    pub hook_id: String,
    /// How it was registered.
    pub spec: RegisterHookRequest,
    /// When.
    pub created_at: Option<DateTime<Utc>>,
    /// Invocations so far.
    pub invocations: u64,
    /// Of which allowed.
    pub allowed: u64,
    /// Vetoed.
    pub vetoed: u64,
    /// Failed.
    pub failed: u64,
    /// Timed out.
    pub timed_out: u64,
    /// The last outcome.
    pub last_outcome: Option<HookOutcome>,
    /// Non-blocking hooks: every event up to this sequence has been delivered.
    pub delivered_sequence: u64,
}

impl From<pb::Hook> for HookInfo {
    fn from(h: pb::Hook) -> Self {
        HookInfo {
            hook_id: h.hook_id,
            spec: h.spec.map(Into::into).unwrap_or_default(),
            created_at: time_from(h.created_at),
            invocations: h.invocations,
            allowed: h.allowed,
            vetoed: h.vetoed,
            failed: h.failed,
            timed_out: h.timed_out,
            last_outcome: h.last_outcome.map(Into::into),
            delivered_sequence: h.delivered_sequence,
        }
    }
}

/// Registration details beyond the agent's id.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleManagerFFI, RegisterAgentOptions};
/// let manager = LifecycleManagerFFI::new();
/// let mut options = RegisterAgentOptions::default();
/// options.labels.insert("team".into(), "blue".into());
/// let r = manager.register_agent_with("a1", options).unwrap();
/// assert_eq!(r.agent.labels["team"], "blue");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RegisterAgentOptions {
    /// The agent's metadata.
    pub metadata: HashMap<String, String>,
    /// Labels, for `list_agents`' selector.
    pub labels: HashMap<String, String>,
    /// Its supervision policy (None: the manager's default).
    pub supervision_policy: Option<pb::SupervisionPolicy>,
}

/// A registered agent and its registration event.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleManagerFFI, LifecycleState};
/// let manager = LifecycleManagerFFI::new();
/// let r = manager.register_agent("a1").unwrap();
/// assert_eq!(r.event.new_state, LifecycleState::Initialized);
/// ```
#[derive(Debug, Clone)]
pub struct RegisterAgentResponse {
    /// The agent's state.
    pub agent: GetStateResponse,
    /// The registration event (Unspecified → Initialized).
    pub event: LifecycleEvent,
}

/// Which agents to list.
///
/// ```
/// use hms_agent::lifecycle::{ListAgentsRequest, LifecycleState};
/// let r = ListAgentsRequest { states: vec![LifecycleState::Active], ..Default::default() };
/// assert_eq!(r.page_size, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListAgentsRequest {
    /// Only in these states (empty: any).
    pub states: Vec<LifecycleState>,
    /// Only agents carrying all these labels.
    pub label_selector: HashMap<String, String>,
    /// Page size (0: 100, at most 1000).
    pub page_size: i32,
    /// The previous page's token.
    pub page_token: String,
}

/// A page of agents, in agent id order.
///
/// ```
/// use hms_agent::lifecycle::ListAgentsResponse;
/// assert!(ListAgentsResponse::default().agents.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListAgentsResponse {
    /// The agents.
    pub agents: Vec<GetStateResponse>,
    /// The next page's token (empty on the last page).
    pub next_page_token: String,
}
