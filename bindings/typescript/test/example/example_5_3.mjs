import { LifecycleManager, LifecycleState } from 'hms-agent-lifecycle';

async function manageAgentLifecycle() {
  // Create lifecycle manager
  const manager = new LifecycleManager();
  
  try {
    await manager.registerAgent("agent-001");

    // Get agent state
    const stateResponse = await manager.getState("agent-001", true);
    console.log(`Current state: ${LifecycleState[stateResponse.state]}`);
    
    // Transition agent to active state
    const response = await manager.transitionState({
      agentId: "agent-001",
      targetState: LifecycleState.Active,
      reason: "Starting agent for task processing",
      timeoutMs: 5000
    });
    
    if (response.success) {
      console.log(`Transitioned from ${LifecycleState[response.previousState]} to ${LifecycleState[response.currentState]}`);
    } else {
      console.log(`Transition failed: ${response.errorMessage}`);
    }
    
    // Watch for lifecycle events
    const eventStream = manager.watchEvents(
      "agent-001",
      [LifecycleState.Error, LifecycleState.Terminated]
    );
    
    for await (const event of eventStream) {
      console.log(`Event: ${LifecycleState[event.newState]} - ${event.reason}`);
    }
  } catch (error) {
    console.error("Error managing agent lifecycle:", error);
  }
}

manageAgentLifecycle();
