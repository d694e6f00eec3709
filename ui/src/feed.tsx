// The live event feed: every event the session's watch delivers, newest first, filtered by
// agent id, state and transition type; pausing freezes the list while events keep coming.
import { useState } from "preact/hooks";
import { STATES, stateName, typeName, TransitionType, type LifecycleEvent } from "./api";
import { agentPath, navigate } from "./route";
import type { Session } from "./main";

const SHOWN = 300;
const TYPES = Object.values(TransitionType).filter((v): v is TransitionType => typeof v === "number" && v !== TransitionType.Unspecified);

export function FeedView({ session }: { session: Session }) {
  const { fleet } = session;
  const [paused, setPaused] = useState<LifecycleEvent[] | undefined>();
  const [q, setQ] = useState("");
  const [state, setState] = useState<number>(0);
  const [type, setType] = useState<number>(0);
  const source = paused ?? fleet.feed;
  const shown: LifecycleEvent[] = [];
  for (let i = source.length - 1; i >= 0 && shown.length < SHOWN; i--) {
    const e = source[i] as LifecycleEvent;
    if (q !== "" && !e.agentId.includes(q) && !e.reason.includes(q) && !e.initiatedBy.includes(q)) continue;
    if (state !== 0 && (e.newState as number) !== state) continue;
    if (type !== 0 && (e.transitionType as number) !== type) continue;
    shown.push(e);
  }
  const behind = paused ? newer(paused, fleet.feed) : 0;
  return (
    <main class="feed">
      <h1>Live events</h1>
      <section class="filters" aria-label="Filters">
        <label>
          Agent, reason or initiator <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        <label>
          New state{" "}
          <select value={state} onChange={(e) => setState(Number(e.currentTarget.value))}>
            <option value={0}>any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {stateName(s)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type{" "}
          <select value={type} onChange={(e) => setType(Number(e.currentTarget.value))}>
            <option value={0}>any</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {typeName(t)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" aria-pressed={paused !== undefined} onClick={() => setPaused(paused ? undefined : [...fleet.feed])}>
          {paused ? "Resume" : "Pause"}
        </button>
        {paused && behind > 0 && <span class="muted">{behind} new events while paused</span>}
        <span class="muted">{fleet.received} events since the console opened</span>
      </section>
      <table class="events">
        <caption class="sr-only">Events, newest first</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Agent</th>
            <th scope="col">Transition</th>
            <th scope="col">Type</th>
            <th scope="col">By</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody data-testid="feed">
          {shown.map((e) => (
            <tr key={e.sequence}>
              <td>{e.sequence}</td>
              <td>
                <time dateTime={e.timestamp.toISOString()}>{e.timestamp.toLocaleTimeString()}</time>
              </td>
              <td>
                <a href={`/ui/${agentPath(e.agentId)}`} onClick={(ev) => navigate(ev, agentPath(e.agentId))}>
                  {e.agentId}
                </a>
              </td>
              <td>
                {stateName(e.previousState)} → {stateName(e.newState)}
              </td>
              <td>{typeName(e.transitionType)}</td>
              <td>{e.initiatedBy}</td>
              <td>{e.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}

/** How many live events are newer than the paused snapshot (up to the feed's length). */
function newer(snapshot: LifecycleEvent[], live: LifecycleEvent[]): number {
  const lastSeq = snapshot.at(-1)?.sequence ?? 0;
  let n = 0;
  for (let i = live.length - 1; i >= 0 && (live[i] as LifecycleEvent).sequence > lastSeq; i--) n++;
  return n;
}
