// An agent's story: its state, the transitions it may take (the server's
// allowed_next_states), a reason, force behind a confirmation, its supervision policy, and
// its history as a timeline (paged, then live) showing why each transition happened.
import { useEffect, useState } from "preact/hooks";
import {
  LifecycleError,
  STATES,
  duration,
  errorText,
  stateName,
  typeName,
  type GetStateResponse,
  type LifecycleEvent,
  type LifecycleState,
} from "./api";
import { RefusalReason, type TransitionResponse } from "hms-agent-lifecycle";
import type { Session } from "./main";

const PAGE = 50;
const READ_PAGE = 1000;

/**
 * An agent's history, newest first. GetTransitionHistory pages oldest first, so the whole
 * history is read in pages of READ_PAGE (as `agents history --tail` does) and shown PAGE
 * events at a time, back from the newest; live events join at the top.
 */
function useHistory(session: Session, id: string) {
  const { mgr, fleet } = session;
  const [events, setEvents] = useState<LifecycleEvent[]>([]);
  const [complete, setComplete] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => {
    setEvents([]);
    setComplete(false);
    setError("");
    const ac = new AbortController();
    const by = new Map<number, LifecycleEvent>();
    const publish = () => setEvents([...by.values()].sort((a, b) => b.sequence - a.sequence));
    // The live tail: the session's one watch stream, this agent's events.
    const un = fleet.onEvent((e) => {
      if (e.agentId !== id) return;
      by.set(e.sequence, e);
      publish();
    });
    void (async () => {
      try {
        for await (const page of mgr.historyPages(id, { pageSize: READ_PAGE, signal: ac.signal })) {
          if (ac.signal.aborted) return;
          for (const e of page) by.set(e.sequence, e);
          publish();
        }
        setComplete(true);
      } catch (e) {
        if (!ac.signal.aborted) setError(errorText(e));
      }
    })();
    return () => {
      ac.abort();
      un();
    };
  }, [id]);
  return { events, complete, error };
}

export function AgentView({ session, id }: { session: Session; id: string }) {
  const { mgr, fleet } = session;
  const [agent, setAgent] = useState<GetStateResponse | undefined>();
  const [error, setError] = useState("");
  const [shown, setShown] = useState(PAGE);
  const history = useHistory(session, id);

  const refresh = () => mgr.getState(id, true).then(setAgent, (e: unknown) => setError(errorText(e)));
  useEffect(() => {
    setAgent(undefined);
    setError("");
    setShown(PAGE);
    void refresh();
    return fleet.onEvent((e) => {
      if (e.agentId === id) void refresh();
    });
  }, [id]);

  const older = history.events.length - shown;
  return (
    <main class="agent">
      <h1>
        Agent <code>{id}</code>
      </h1>
      {(error || history.error) && (
        <p role="alert" class="error">
          {error || history.error}
        </p>
      )}
      {agent && <StateCard agent={agent} />}
      {agent && session.role !== "viewer" && <Actions session={session} agent={agent} onDone={refresh} />}
      {agent && session.role !== "viewer" && <Supervision session={session} agent={agent} onDone={refresh} />}
      <section aria-labelledby="history-h">
        <h2 id="history-h">
          History <span class="muted">(newest first; {history.events.length} events{history.complete ? "" : ", reading…"})</span>
        </h2>
        <ol class="timeline" data-testid="timeline">
          {history.events.slice(0, shown).map((e) => (
            <TimelineItem key={e.sequence} e={e} />
          ))}
        </ol>
        {older > 0 && (
          <button type="button" onClick={() => setShown(shown + PAGE)}>
            Show {Math.min(PAGE, older)} older events ({older} more)
          </button>
        )}
        {older <= 0 && history.complete && <p class="muted">The oldest stored event is shown.</p>}
      </section>
    </main>
  );
}

function StateCard({ agent }: { agent: GetStateResponse }) {
  const s = agent.supervision;
  return (
    <section class="card" aria-label="Current state">
      <dl>
        <dt>State</dt>
        <dd>
          <span class={`pill st-${stateName(agent.state)}`} data-testid="agent-state">
            {stateName(agent.state)}
          </span>{" "}
          for {duration(agent.timeInStateMs)} (from {stateName(agent.previousState)})
        </dd>
        <dt>Revision</dt>
        <dd>{agent.revision}</dd>
        <dt>Labels</dt>
        <dd>{Object.entries(agent.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"}</dd>
        {agent.metadata && (
          <>
            <dt>Metadata</dt>
            <dd>{Object.entries(agent.metadata).map(([k, v]) => `${k}=${v}`).join(", ")}</dd>
          </>
        )}
        <dt>Supervision</dt>
        <dd>
          {s ? (s.defaultPolicy ? "the server's default policy" : "its own policy") : "none"}
          {s && s.recoveriesInWindow > 0 && `, ${s.recoveriesInWindow} recoveries in the window`}
          {s?.nextAction && `; next: ${stateName(s.nextAction.targetState as number)} (${s.nextAction.reason})`}
        </dd>
        {agent.errorInfo && (
          <>
            <dt>Error</dt>
            <dd class="error">
              {agent.errorInfo.code}: {agent.errorInfo.message}
              {agent.errorInfo.isRecoverable ? " (recoverable)" : " (not recoverable)"}
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}

function Actions({ session, agent, onDone }: { session: Session; agent: GetStateResponse; onDone: () => unknown }) {
  const [reason, setReason] = useState("");
  const [result, setResult] = useState<TransitionResponse | undefined>();
  const [error, setError] = useState("");
  const [forceTarget, setForceTarget] = useState<LifecycleState | 0>(0);
  const [confirming, setConfirming] = useState(false);
  const go = async (target: LifecycleState, force: boolean) => {
    setError("");
    setResult(undefined);
    try {
      const r = await session.mgr.transitionState({ agentId: agent.agentId, targetState: target, reason, force, expectedRevision: agent.revision });
      setResult(r);
      if (r.success) setReason("");
    } catch (e) {
      setError(e instanceof LifecycleError ? e.message : errorText(e));
    }
    setConfirming(false);
    onDone();
  };
  return (
    <section class="card actions" aria-labelledby="act-h">
      <h2 id="act-h">Transition</h2>
      <label>
        Reason <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} placeholder="why (recorded in the history)" />
      </label>
      <div class="buttons" role="group" aria-label="Allowed next states">
        {agent.allowedNextStates.length === 0 && <span class="muted">No transition is allowed from {stateName(agent.state)}.</span>}
        {agent.allowedNextStates.map((s) => (
          <button type="button" key={s} onClick={() => void go(s, false)} data-target={stateName(s)}>
            → {stateName(s)}
          </button>
        ))}
      </div>
      {session.role === "admin" && (
        <div class="force">
          <label>
            Force to{" "}
            <select value={forceTarget} onChange={(e) => setForceTarget(Number(e.currentTarget.value))}>
              <option value={0}>choose a state</option>
              {STATES.map((s) => (
                <option key={s} value={s}>
                  {stateName(s)}
                </option>
              ))}
            </select>
          </label>
          <button type="button" class="danger" disabled={forceTarget === 0} onClick={() => setConfirming(true)}>
            Force…
          </button>
          {confirming && forceTarget !== 0 && (
            <div role="alertdialog" aria-labelledby="force-q" class="confirm" onKeyDown={(e) => e.key === "Escape" && setConfirming(false)}>
              <p id="force-q">
                Force {agent.agentId} from {stateName(agent.state)} to {stateName(forceTarget)}, bypassing the state machine's rules?
              </p>
              <button type="button" class="danger" onClick={() => void go(forceTarget, true)}>
                Force it
              </button>
              <button type="button" onClick={() => setConfirming(false)} autoFocus>
                Cancel
              </button>
            </div>
          )}
        </div>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {result && !result.success && (
        <div role="alert" class="refusal" data-testid="refusal">
          <strong>Refused</strong>: {result.errorMessage ?? "no reason given"}
          {result.refusalReason !== undefined && <span class="muted" data-testid="refusal-reason"> ({RefusalReason[result.refusalReason] ?? result.refusalReason})</span>}
          <div>
            Allowed from {stateName(result.currentState)}:{" "}
            <span data-testid="refusal-allowed">{(result.allowedNextStates ?? []).map(stateName).join(", ") || "none"}</span>
          </div>
          {result.hookOutcomes && <Outcomes outcomes={result.hookOutcomes} />}
        </div>
      )}
      {result?.success && (
        <p role="status" class="ok">
          {stateName(result.previousState)} → {stateName(result.currentState)}
        </p>
      )}
    </section>
  );
}

function Supervision({ session, agent, onDone }: { session: Session; agent: GetStateResponse; onDone: () => unknown }) {
  const p = agent.supervision?.policy;
  const [restart, setRestart] = useState(String(p?.restart ?? 0));
  const [maxRecoveries, setMax] = useState(String(p?.maxRecoveries ?? 0));
  const [heartbeat, setHeartbeat] = useState(String(p?.heartbeatTimeoutMs ?? 0));
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const save = async (e: Event, useDefault: boolean) => {
    e.preventDefault();
    try {
      const policy = useDefault
        ? undefined
        : { restart: Number(restart), maxRecoveries: Number(maxRecoveries), heartbeatTimeoutMs: Number(heartbeat) };
      await session.mgr.setSupervisionPolicy(agent.agentId, policy);
      setMsg({ ok: true, text: useDefault ? "follows the server's default policy" : "policy set" });
      onDone();
    } catch (err) {
      setMsg({ ok: false, text: errorText(err) });
    }
  };
  return (
    <details class="card">
      <summary>Supervision policy</summary>
      <form onSubmit={(e) => void save(e, false)}>
        <label>
          Restart{" "}
          <select value={restart} onChange={(e) => setRestart(e.currentTarget.value)}>
            <option value="0">default</option>
            <option value="1">never</option>
            <option value="2">on error</option>
          </select>
        </label>
        <label>
          Max recoveries <input type="number" min={0} max={100} value={maxRecoveries} onInput={(e) => setMax(e.currentTarget.value)} />
        </label>
        <label>
          Heartbeat timeout (ms, 0 off) <input type="number" min={0} value={heartbeat} onInput={(e) => setHeartbeat(e.currentTarget.value)} />
        </label>
        <button type="submit">Set policy</button>
        <button type="button" onClick={(e) => void save(e, true)}>
          Use the default
        </button>
        {msg && (
          <span role="status" class={msg.ok ? "ok" : "error"}>
            {msg.text}
          </span>
        )}
      </form>
    </details>
  );
}

function Outcomes({ outcomes }: { outcomes: NonNullable<LifecycleEvent["hookOutcomes"]> }) {
  return (
    <ul class="outcomes">
      {outcomes.map((o, i) => (
        <li key={i} class={`oc-${o.result}`}>
          hook <strong>{o.hookName || o.hookId}</strong>: {o.result.toLowerCase().replace("_", " ")}
          {o.message && ` — ${o.message}`} <span class="muted">({(o.latencyUs / 1000).toFixed(1)} ms{o.enforced ? "" : ", not enforced"})</span>
        </li>
      ))}
    </ul>
  );
}

function TimelineItem({ e }: { e: LifecycleEvent }) {
  return (
    <li data-sequence={e.sequence}>
      <div class="tl-head">
        <span class={`pill st-${stateName(e.previousState)}`}>{stateName(e.previousState)}</span> →{" "}
        <span class={`pill st-${stateName(e.newState)}`}>{stateName(e.newState)}</span>
        <span class="tl-type">{typeName(e.transitionType)}</span>
        <time dateTime={e.timestamp.toISOString()}>{e.timestamp.toLocaleString()}</time>
        <span class="muted">#{e.sequence}</span>
      </div>
      <div class="tl-why">
        by <strong class="initiator">{e.initiatedBy}</strong>
        {e.reason ? (
          <>
            : <q class="reason">{e.reason}</q>
          </>
        ) : (
          <span class="muted"> (no reason given)</span>
        )}
      </div>
      {e.metadata && <div class="muted">metadata: {Object.entries(e.metadata).map(([k, v]) => `${k}=${v}`).join(", ")}</div>}
      {e.errorInfo && (
        <div class="error">
          error {e.errorInfo.code}: {e.errorInfo.message} {e.errorInfo.isRecoverable ? "(recoverable)" : "(not recoverable)"}
          {e.errorInfo.recoveryActions && ` — recovery: ${e.errorInfo.recoveryActions.join(", ")}`}
        </div>
      )}
      {e.hookOutcomes && <Outcomes outcomes={e.hookOutcomes} />}
    </li>
  );
}
