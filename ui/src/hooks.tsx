// Registered hooks: their filters, blocking or not, failure policy, outcome counts and the
// latency of their last outcome (ListHooks; refreshed every few seconds and on demand).
import { useEffect, useState } from "preact/hooks";
import { errorText, stateName, typeName } from "./api";
import type { Hook } from "hms-agent-lifecycle";
import type { Session } from "./main";

export function HooksView({ session }: { session: Session }) {
  const [hooks, setHooks] = useState<Hook[] | undefined>();
  const [error, setError] = useState("");
  const load = () =>
    session.mgr.listHooks().then(
      (h) => {
        setHooks(h);
        setError("");
      },
      (e: unknown) => setError(errorText(e)),
    );
  useEffect(() => {
    void load();
    // Hook statistics have no stream of their own: ListHooks is re-read while this view is open.
    const t = setInterval(() => void load(), 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <main class="hooks">
      <h1>Hooks</h1>
      <button type="button" onClick={() => void load()}>
        Refresh
      </button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {hooks && hooks.length === 0 && <p class="muted">No hook is registered.</p>}
      {hooks && hooks.length > 0 && (
        <table class="events">
          <thead>
            <tr>
              <th scope="col">Hook</th>
              <th scope="col">Target</th>
              <th scope="col">On states</th>
              <th scope="col">On types</th>
              <th scope="col">Agents</th>
              <th scope="col">Blocking</th>
              <th scope="col">Failure policy</th>
              <th scope="col">Timeout</th>
              <th scope="col">Runs</th>
              <th scope="col">Allowed</th>
              <th scope="col">Vetoed</th>
              <th scope="col">Failed</th>
              <th scope="col">Timed out</th>
              <th scope="col">Last outcome</th>
            </tr>
          </thead>
          <tbody>
            {hooks.map((h) => (
              <tr key={h.hookId}>
                <td>
                  <strong>{h.hookName}</strong> <span class="muted">{h.hookId}</span>
                </td>
                <td>
                  {h.config["type"] ?? ""} {h.config["callback"] ?? h.config["url"] ?? ""}
                  {h.workerConnected === false && h.config["callback"] !== undefined && <span class="muted"> (no worker connected)</span>}
                </td>
                <td>{h.triggerStates.map(stateName).join(", ") || "any"}</td>
                <td>{h.triggerTransitions.map(typeName).join(", ") || "any"}</td>
                <td>{h.agentIds.join(", ") || "all"}</td>
                <td>{h.isBlocking ? "yes" : "no"}</td>
                <td>{h.config["failure_policy"] ?? "fail"}</td>
                <td>{h.timeoutMs} ms</td>
                <td>{h.invocations}</td>
                <td>{h.allowed}</td>
                <td>{h.vetoed}</td>
                <td>{h.failed}</td>
                <td>{h.timedOut}</td>
                <td>
                  {h.lastOutcome
                    ? `${h.lastOutcome.result.toLowerCase()} in ${(h.lastOutcome.latencyUs / 1000).toFixed(1)} ms${h.lastOutcome.message ? `: ${h.lastOutcome.message}` : ""}`
                    : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
