package lifecycle_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// The specification's usage example (section 5): get an agent's state, transition it to
// ACTIVE, and watch it for ERROR and TERMINATED.
func Example() {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	manager, err := lifecycle.New(ctx, store, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer manager.Close()
	if _, _, err := manager.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "agent-001"}); err != nil {
		log.Fatal(err)
	}

	// Get agent state
	state, err := manager.GetState(ctx, "agent-001", true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Current state:", lifecycle.StateName(state.State))

	// Transition agent to active state
	response, err := manager.Transition(ctx, lifecycle.TransitionRequest{
		AgentID: "agent-001",
		Target:  lifecycle.StateActive,
		Reason:  "Starting agent for task processing",
		Timeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	if response.Success {
		fmt.Printf("Transitioned from %s to %s\n", lifecycle.StateName(response.Previous), lifecycle.StateName(response.Current))
	} else {
		fmt.Println("Transition failed:", response.Message)
	}

	// Watch for lifecycle events
	events, err := manager.Watch(ctx, lifecycle.WatchRequest{
		AgentID: "agent-001",
		States:  []lifecycle.State{lifecycle.StateError, lifecycle.StateTerminated},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()
	manager.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: lifecycle.StatePaused, Reason: "not watched"})
	manager.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: lifecycle.StateError, Reason: "lost its database"})
	event, err := events.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Event: %s - %s\n", lifecycle.StateName(event.To), event.Reason)

	// Output:
	// Current state: INITIALIZED
	// Transitioned from INITIALIZED to ACTIVE
	// Event: ERROR - lost its database
}

// A refused transition is an answer, not an error.
func ExampleManager_Transition_refused() {
	ctx := context.Background()
	manager, _ := lifecycle.New(ctx, memory.New(), nil)
	defer manager.Close()
	manager.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "agent-001"})

	response, err := manager.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: lifecycle.StatePaused})
	fmt.Println(err)
	fmt.Println(response.Success, response.Refusal)
	fmt.Println(response.Message)
	// Output:
	// <nil>
	// false REFUSAL_REASON_INVALID_TRANSITION
	// agent agent-001 cannot go from INITIALIZED to PAUSED; allowed next states: ACTIVE, ERROR, TERMINATED
}

// A blocking hook can veto a transition.
func ExampleManager_RegisterHook() {
	ctx := context.Background()
	manager, _ := lifecycle.New(ctx, memory.New(), nil)
	defer manager.Close()
	manager.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "agent-001"})

	manager.HandleCallback("change-freeze", func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
		return lifecycle.HookDecision{Veto: true, Reason: "change freeze in effect"}, nil
	})
	manager.RegisterHook(ctx, lifecycle.HookSpec{
		Name:          "change-freeze",
		TriggerStates: []lifecycle.State{lifecycle.StateActive},
		Blocking:      true,
		Config:        map[string]string{"type": "callback", "callback": "change-freeze"},
	})
	response, _ := manager.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: lifecycle.StateActive})
	fmt.Println(response.Refusal)
	fmt.Println(response.Message)
	// Output:
	// REFUSAL_REASON_HOOK_VETOED
	// agent agent-001 stays INITIALIZED: hook change-freeze vetoed the transition: change freeze in effect
}
