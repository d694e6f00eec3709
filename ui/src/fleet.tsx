// The fleet: counts per state (a bar chart that filters), filters by state and label, a
// search by id, registration, and every agent in a virtualized table (only the rows on
// screen are in the DOM), live from the session's watch.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { STATES, duration, errorText, parseLabels, stateName, type Row } from "./api";
import { agentPath, navigate } from "./route";
import type { Session } from "./main";

const ROW = 32;
const OVERSCAN = 8;

function matches(r: Row, states: Set<number>, labels: Record<string, string>, q: string): boolean {
  if (states.size > 0 && !states.has(r.state)) return false;
  if (q !== "" && !r.id.includes(q)) return false;
  for (const k in labels) if (r.labels[k] !== labels[k]) return false;
  return true;
}

function nextAction(r: Row, now: number): string {
  const n = r.supervision?.nextAction;
  if (!n) return "";
  const at = n.at ? Number(n.at.seconds) * 1000 + n.at.nanos / 1e6 : now;
  return `→ ${stateName(n.targetState as number)} in ${duration(at - now)}`;
}

function supervisionText(r: Row): string {
  const s = r.supervision;
  if (!s) return "";
  const policy = s.defaultPolicy ? "default" : "own policy";
  return s.recoveriesInWindow > 0 ? `${policy}, ${s.recoveriesInWindow} recoveries` : policy;
}

export function FleetView({ session }: { session: Session }) {
  const { fleet } = session;
  const [states, setStates] = useState<Set<number>>(new Set());
  const [labelText, setLabelText] = useState("");
  const [q, setQ] = useState("");
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  let labels: Record<string, string> = {};
  let labelError = "";
  try {
    labels = parseLabels(labelText);
  } catch (e) {
    labelError = errorText(e);
  }
  const labelKey = JSON.stringify(labels);
  const counts = fleet.counts;
  // With no filter the table reads the fleet's sorted ids as they are: a frame's work is
  // then the rows on screen, not the whole fleet.
  const visible = useMemo(() => {
    if (states.size === 0 && q === "" && labelKey === "{}") return fleet.ids;
    return fleet.ids.filter((id) => matches(fleet.rows.get(id) as Row, states, labels, q));
  }, [fleet.version, states, labelKey, q]);
  const toggle = (s: number) => {
    const n = new Set(states);
    if (n.has(s)) n.delete(s);
    else n.add(s);
    setStates(n);
  };
  const max = Math.max(1, ...counts.values());
  return (
    <main class="fleet">
      <section aria-labelledby="counts-h" class="counts">
        <h2 id="counts-h">
          Agents by state <span class="muted">({fleet.ids.length} agents)</span>
        </h2>
        <ul class="bars">
          {STATES.map((s) => {
            const n = counts.get(s) ?? 0;
            return (
              <li key={s}>
                <button type="button" class={`bar st-${stateName(s)}`} aria-pressed={states.has(s)} onClick={() => toggle(s)} title={`Show only ${stateName(s)} (toggle)`}>
                  <span class="bar-label">{stateName(s)}</span>
                  <span class="bar-track">
                    <span class="bar-fill" style={{ width: `${(100 * n) / max}%` }} />
                  </span>
                  <span class="bar-n" data-testid={`count-${stateName(s)}`}>
                    {n}
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
      </section>
      <section class="filters" aria-label="Filters">
        <label>
          Search by id <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="agent-0" />
        </label>
        <label>
          Labels <input type="text" value={labelText} onInput={(e) => setLabelText(e.currentTarget.value)} placeholder="team=core, zone=a" aria-invalid={labelError !== ""} />
        </label>
        {labelError && <span class="error">{labelError}</span>}
        {states.size > 0 && (
          <button type="button" class="link" onClick={() => setStates(new Set())}>
            All states
          </button>
        )}
        <span class="muted" data-testid="shown">
          {visible.length} shown
        </span>
      </section>
      {session.role !== "viewer" && <Register session={session} />}
      <AgentTable session={session} rows={visible} now={now} />
    </main>
  );
}

function Register({ session }: { session: Session }) {
  const [id, setId] = useState("");
  const [labels, setLabels] = useState("");
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const l = parseLabels(labels);
      await session.mgr.registerAgent(id.trim(), { labels: l });
      setMsg({ ok: true, text: `registered ${id.trim()}` });
      setId("");
    } catch (err) {
      setMsg({ ok: false, text: errorText(err) });
    }
  };
  return (
    <details class="register">
      <summary>Register an agent</summary>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Agent id <input value={id} onInput={(e) => setId(e.currentTarget.value)} required />
        </label>
        <label>
          Labels <input value={labels} onInput={(e) => setLabels(e.currentTarget.value)} placeholder="team=core" />
        </label>
        <button type="submit">Register</button>
        {msg && (
          <span role="status" class={msg.ok ? "ok" : "error"}>
            {msg.text}
          </span>
        )}
      </form>
    </details>
  );
}

/** The table of these agent ids: only the rows on screen (and a few more) are rendered. */
function AgentTable({ session, rows, now }: { session: Session; rows: string[]; now: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((top + height) / ROW) + OVERSCAN);
  const slice = rows.slice(first, last).map((id) => session.fleet.rows.get(id) as Row);
  useEffect(() => {
    session.fleet.want(slice.map((r) => r.id));
  });
  // Keyboard: the table keeps the focus and points at its active row
  // (aria-activedescendant); arrows, Page Up/Down, Home and End move it, scrolling it into
  // view, and Enter opens it. Focus never sits on a row, which may be unrendered any moment.
  const [active, setActiveState] = useState(-1);
  const activeNow = useRef(-1); // key presses may come faster than renders
  const setActive = (i: number) => {
    activeNow.current = i;
    setActiveState(i);
  };
  const onKey = (e: KeyboardEvent) => {
    const el = box.current;
    if (el === null || rows.length === 0) return;
    if (e.key === "Enter" && activeNow.current >= 0) {
      e.preventDefault();
      navigate(undefined, agentPath(rows[activeNow.current] as string));
      return;
    }
    const page = Math.max(1, Math.floor(el.clientHeight / ROW) - 1);
    const steps: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -rows.length, End: rows.length };
    const step = steps[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const cur = activeNow.current;
    const at = Math.min(rows.length - 1, Math.max(0, (cur < 0 ? Math.ceil(el.scrollTop / ROW) - 1 : cur) + step));
    // Row `at` spans [at*ROW, (at+1)*ROW] below the sticky header (ROW high).
    if (at * ROW < el.scrollTop) el.scrollTop = at * ROW;
    else if ((at + 2) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (at + 2) * ROW - el.clientHeight;
    setTop(el.scrollTop);
    setActive(at);
  };
  return (
    <div
      class="table"
      ref={box}
      role="grid"
      aria-label="Agents: arrow keys choose one, Enter opens it"
      aria-rowcount={rows.length + 1}
      aria-readonly="true"
      tabIndex={0}
      onScroll={(e) => setTop(e.currentTarget.scrollTop)}
      onKeyDown={onKey}
      aria-activedescendant={active >= first && active < last ? `agent-row-${active}` : undefined}
    >
      <div class="tr th" role="row" aria-rowindex={1}>
        <span role="columnheader">Agent</span>
        <span role="columnheader">State</span>
        <span role="columnheader">In state</span>
        <span role="columnheader">Labels</span>
        <span role="columnheader">Supervision</span>
        <span role="columnheader">Next automatic action</span>
      </div>
        <div class="rows" style={{ height: `${rows.length * ROW}px` }}>
          {slice.map((r, i) => (
            <div role="row" key={r.id} aria-rowindex={first + i + 2} style={{ transform: `translateY(${(first + i) * ROW}px)` }} data-agent={r.id} id={`agent-row-${first + i}`} aria-selected={first + i === active} class={first + i === active ? "tr active" : "tr"}>
              <span role="gridcell" class="id">
                <a href={`/ui/${agentPath(r.id)}`} onClick={(e) => navigate(e, agentPath(r.id))} tabIndex={-1}>
                  {r.id}
                </a>
              </span>
              <span role="gridcell">
                <span class={`pill st-${stateName(r.state)}`} data-testid="state">
                  {stateName(r.state)}
                </span>
              </span>
              <span role="gridcell">{duration(now - r.since)}</span>
              <span role="gridcell" class="labels">
                {Object.entries(r.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ")}
              </span>
              <span role="gridcell">{supervisionText(r)}</span>
              <span role="gridcell">{nextAction(r, now)}</span>
            </div>
          ))}
        </div>
      {rows.length === 0 && <p class="empty">{session.fleet.loaded ? "No agent matches." : "Loading…"}</p>}
    </div>
  );
}
