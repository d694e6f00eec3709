// Runs the section 5.3 example (example_5_3.mjs: the specification's text plus one
// registerAgent line) as written, and plays the world around it: once the example has
// opened its watch, this moves agent-001 into ERROR through the example's own manager (by
// wrapping watchEvents before the example runs), so that the example's endless watch loop
// prints an event. The test then stops the process: the loop never ends by itself.
// HMS_ENDPOINT set: the example's `new LifecycleManager()` talks to that server.
import { LifecycleManager, LifecycleState } from "hms-agent-lifecycle";

const watchEvents = LifecycleManager.prototype.watchEvents;
LifecycleManager.prototype.watchEvents = function (...args) {
  const it = watchEvents.apply(this, args);
  // Once the stream is open (the server has registered the watcher and answered), the
  // world moves on.
  it.opened
    .then(() => this.transitionState({ agentId: "agent-001", targetState: LifecycleState.Error, reason: "injected failure" }))
    .catch((e) => console.error("inject:", e));
  return it;
};

await import("./example_5_3.mjs");
