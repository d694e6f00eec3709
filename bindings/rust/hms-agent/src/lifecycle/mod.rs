//! The specification's Rust API (section 3.1): [`LifecycleManager`], implemented over the C
//! library by [`LifecycleManagerFFI`], embedded or remote.
//!
//! ```
//! use hms_agent::lifecycle::{LifecycleManager, LifecycleManagerFFI, LifecycleState, TransitionRequest, WatchEventsRequest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = LifecycleManagerFFI::new();
//! manager.register_agent("agent-001")?;
//! manager.transition_state(TransitionRequest::new("agent-001", LifecycleState::Active).reason("start"))?;
//! let mut events = manager.watch_events(WatchEventsRequest {
//!     agent_id: "agent-001".into(),
//!     from_sequence: 1,
//!     ..Default::default()
//! })?;
//! let registered = events.next().unwrap()?;
//! let activated = events.next().unwrap()?;
//! assert_eq!(registered.new_state, LifecycleState::Initialized);
//! assert_eq!(activated.new_state, LifecycleState::Active);
//! # Ok(()) }
//! ```

mod builder;
mod decode;
mod hooks;
mod manager;
mod stream;
mod types;

pub use crate::error::{Code, Error};
pub use crate::proto::agent::{SupervisionPolicy, SupervisionStatus};
pub use builder::Builder;
pub use hooks::{HookDecision, HookInvocation};
pub use manager::{History, LifecycleManagerFFI};
#[cfg(feature = "tokio")]
pub use stream::AsyncEventStream;
pub use stream::{EventStream, RawEventStream, StreamCloser};
pub use types::*;

/// The lifecycle manager client of the specification (§3.1): the same five methods,
/// embedded or remote.
///
/// ```
/// use hms_agent::lifecycle::{LifecycleManager, LifecycleManagerFFI, LifecycleState};
///
/// fn is_active(m: &dyn LifecycleManager, id: &str) -> bool {
///     m.get_state(id, false).map(|s| s.state == LifecycleState::Active).unwrap_or(false)
/// }
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// assert!(!is_active(&manager, "a1"));
/// ```
pub trait LifecycleManager {
    /// Gets the current state of an agent (`include_details`: metadata and labels too).
    /// Errors: `NotFound`, `InvalidArgument`.
    fn get_state(&self, agent_id: &str, include_details: bool) -> Result<GetStateResponse, Error>;

    /// Transitions an agent to a new state. A refusal is an answer (`success == false`);
    /// errors (`NotFound`, `InvalidArgument`) are for requests that cannot be processed.
    fn transition_state(&self, request: TransitionRequest) -> Result<TransitionResponse, Error>;

    /// Gets one page of transition history (see [`LifecycleManagerFFI::history`] for all).
    fn get_transition_history(&self, request: GetHistoryRequest) -> Result<GetHistoryResponse, Error>;

    /// Watches lifecycle events, from a sequence or from now. Errors: `OutOfRange` for a
    /// resume point older than retention.
    fn watch_events(&self, request: WatchEventsRequest) -> Result<EventStream, Error>;

    /// Registers a lifecycle hook. Errors: `InvalidArgument` naming a bad setting.
    fn register_hook(&self, request: RegisterHookRequest) -> Result<RegisterHookResponse, Error>;
}

/// The formats messages cross the C boundary in.
///
/// ```
/// use hms_agent::lifecycle::Format;
/// assert_eq!(Format::Json as i32, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Protobuf binary.
    Protobuf = 0,
    /// protojson.
    Json = 1,
    /// CBOR (docs/cbor.md).
    Cbor = 2,
}

/// Converts a message (by its full name) between formats, without a manager.
///
/// ```
/// use hms_agent::lifecycle::{convert, Format};
/// let pb = convert("hms.agent.lifecycle.v1.GetStateRequest", Format::Json, br#"{"agentId":"a"}"#, Format::Protobuf).unwrap();
/// assert_eq!(pb, b"\x0a\x01a");
/// ```
pub fn convert(message: &str, from: Format, input: &[u8], to: Format) -> Result<Vec<u8>, Error> {
    crate::ffi::convert(message, from as i32, input, to as i32)
}

/// How many managers, streams and hook workers the library has open in this process.
///
/// ```
/// use hms_agent::lifecycle::{open_handles, LifecycleManagerFFI};
/// let m = LifecycleManagerFFI::new();
/// assert!(open_handles() >= 1);
/// m.close().unwrap();
/// ```
pub fn open_handles() -> i64 {
    crate::ffi::handle_count()
}
