from hms_agent.lifecycle import LifecycleManager, LifecycleState

# Create lifecycle manager
manager = LifecycleManager()
manager.register_agent("agent-001")

# Get agent state
state_response = manager.get_state("agent-001", include_details=True)
print(f"Current state: {state_response['state']}")

# Transition agent to active state
response = manager.transition_state(
    agent_id="agent-001",
    target_state=LifecycleState.ACTIVE,
    reason="Starting agent for task processing",
    timeout_ms=5000
)

if response["success"]:
    print(f"Transitioned from {response['previous_state']} to {response['current_state']}")
else:
    print(f"Transition failed: {response.get('error_message', '')}")

# Watch for lifecycle events
for event in manager.watch_events(
    agent_id="agent-001",
    states=[LifecycleState.ERROR, LifecycleState.TERMINATED]
):
    print(f"Event: {event.new_state} - {event.reason}")
