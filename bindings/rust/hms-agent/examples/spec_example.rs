//! The specification's section 5.1 example, as written, with the `use` lines it leaves out
//! (`LifecycleManagerFFI`, `HashMap`) and one `register_agent` call (agents are created by
//! registration). Run it with `cargo run --example spec_example`.

use hms_agent::lifecycle::LifecycleManagerFFI;
use hms_agent::lifecycle::{LifecycleManager, LifecycleState, TransitionRequest};
use std::collections::HashMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create lifecycle manager
    let manager = LifecycleManagerFFI::new();
    manager.register_agent("agent-001")?;

    // Get agent state
    let state_response = manager.get_state("agent-001", true)?;
    println!("Current state: {:?}", state_response.state);

    // Transition agent to active state
    let request = TransitionRequest {
        agent_id: "agent-001".to_string(),
        target_state: LifecycleState::Active,
        force: false,
        reason: "Starting agent for task processing".to_string(),
        timeout_ms: 5000,
        metadata: HashMap::new(),
    };

    let response = manager.transition_state(request)?;
    if response.success {
        println!("Transitioned from {:?} to {:?}", response.previous_state, response.current_state);
    } else {
        println!("Transition failed: {}", response.error_message.unwrap_or_default());
    }

    Ok(())
}
