//! # hms-agent
//!
//! HMS Lifecycle for Rust: the lifecycle control plane's core linked statically into your
//! program ("embedded": memory, SQLite or PostgreSQL store) or a server ("remote"), behind
//! one API — the specification's [`lifecycle::LifecycleManager`] trait, implemented by
//! [`lifecycle::LifecycleManagerFFI`].
//!
//! ```
//! use hms_agent::lifecycle::{LifecycleManager, LifecycleManagerFFI, LifecycleState, TransitionRequest};
//! use std::collections::HashMap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = LifecycleManagerFFI::new();
//! manager.register_agent("agent-001")?;
//! let response = manager.transition_state(TransitionRequest {
//!     agent_id: "agent-001".to_string(),
//!     target_state: LifecycleState::Active,
//!     force: false,
//!     reason: "start".to_string(),
//!     timeout_ms: 5000,
//!     metadata: HashMap::new(),
//! })?;
//! assert!(response.success);
//! assert_eq!(manager.get_state("agent-001", true)?.state, LifecycleState::Active);
//! # Ok(()) }
//! ```
//!
//! Every message crosses the C boundary as protobuf (prost); [`proto`] holds the generated
//! messages of both services, used directly for the less common calls (supervision,
//! plugins).
#![warn(missing_docs)]

mod error;
mod ffi;
pub mod lifecycle;
pub mod plugins;

/// The protobuf messages of `proto/` (generated with prost): `hms.agent.lifecycle.v1` as
/// [`proto::agent`], `hms.plugin.lifecycle.v1` as [`proto::plugin`].
#[allow(missing_docs, clippy::all, rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]
pub mod proto {
    mod hms {
        pub mod agent {
            pub mod lifecycle {
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/hms.agent.lifecycle.v1.rs"));
                }
            }
        }
        pub mod plugin {
            pub mod lifecycle {
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/hms.plugin.lifecycle.v1.rs"));
                }
            }
        }
    }
    pub use hms::agent::lifecycle::v1 as agent;
    pub use hms::plugin::lifecycle::v1 as plugin;
}
