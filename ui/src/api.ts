// The console's session: one remote client of the binding (the server that serves the
// page, over Connect), the signed-in role, and the fleet kept live from one WatchEvents
// stream that resumes from the last sequence it applied after any disconnect.
import {
  LifecycleError,
  LifecycleManager,
  LifecycleState,
  TransitionType,
  type EventIterator,
  type GetStateResponse,
  type LifecycleEvent,
  type SupervisionStatus,
} from "hms-agent-lifecycle";

export { LifecycleState, TransitionType, LifecycleError };
export type { GetStateResponse, LifecycleEvent, SupervisionStatus };

export type Role = "viewer" | "operator" | "admin";

/** Every state but UNSPECIFIED, in the enum's order. */
export const STATES: LifecycleState[] = Object.values(LifecycleState).filter(
  (v): v is LifecycleState => typeof v === "number" && v !== LifecycleState.Unspecified,
);

const upper = (s: string): string => s.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
export const stateName = (s: LifecycleState): string => upper(LifecycleState[s] ?? String(s));
export const typeName = (t: TransitionType): string => upper(TransitionType[t] ?? String(t));

export function errorText(e: unknown): string {
  if (e instanceof LifecycleError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Opens a client with the token and finds its role: probes that the server authorizes
 * before it looks at them, and that change nothing (they are invalid requests). */
export async function signIn(token: string): Promise<{ mgr: LifecycleManager; role: Role }> {
  const mgr = new LifecycleManager({ endpoint: location.origin, token, transport: "connect" });
  try {
    await mgr.listAgents({ pageSize: 1 });
  } catch (e) {
    await mgr.close();
    throw e;
  }
  const denied = async (f: () => Promise<unknown>): Promise<boolean> => {
    try {
      await f();
      return false;
    } catch (e) {
      return e instanceof LifecycleError && e.code === "PERMISSION_DENIED";
    }
  };
  let role: Role = "admin";
  if (await denied(() => mgr.heartbeat([]))) role = "viewer";
  else if (await denied(() => mgr.unregisterHook(""))) role = "operator";
  return { mgr, role };
}

export interface Row {
  id: string;
  state: LifecycleState;
  previousState: LifecycleState;
  /** When it entered its state. */
  since: number;
  labels: Record<string, string>;
  supervision: SupervisionStatus | undefined;
  revision: number;
  lastSequence: number;
  /** The revision the labels and supervision were read at (-1: never). */
  detailsRevision: number;
}

export type Connection = "connecting" | "live" | "reconnecting";

const FEED_MAX = 2000;
/** Stored events the feed starts with. */
const FEED_SEED = 200;

function rowOf(a: GetStateResponse): Row {
  return {
    id: a.agentId,
    state: a.state,
    previousState: a.previousState,
    since: a.lastTransition.getTime() || a.createdAt?.getTime() || Date.now(),
    labels: a.labels ?? {},
    supervision: a.supervision,
    revision: a.revision,
    lastSequence: a.lastSequence,
    detailsRevision: a.supervision ? a.revision : -1,
  };
}

/** The agents in id order, kept live; listeners are told at most once per frame. */
export class Fleet {
  readonly rows = new Map<string, Row>();
  /** Ids in sorted order. */
  ids: string[] = [];
  /** Agents per state, kept as events arrive (the chart reads it every frame). */
  readonly counts = new Map<LifecycleState, number>();
  version = 0;
  connection: Connection = "connecting";
  lastError = "";
  /** The highest sequence the watch delivered: it resumes after it. */
  lastSequence = 0;
  /** The highest sequence the last listing reflected. */
  private listedUpTo = 0;
  /** The latest events, oldest first (at most FEED_MAX). */
  feed: LifecycleEvent[] = [];
  /** Events received since the console opened, and reconnects. */
  received = 0;
  reconnects = 0;
  loaded = false;

  private readonly listeners = new Set<() => void>();
  private readonly eventListeners = new Set<(e: LifecycleEvent) => void>();
  private frame = 0;
  private readonly stop = new AbortController();
  private readonly wanted = new Set<string>();
  private fetching = false;

  constructor(private readonly mgr: LifecycleManager) {}

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Every event as it is applied (the agent page's live tail). */
  onEvent(f: (e: LifecycleEvent) => void): () => void {
    this.eventListeners.add(f);
    return () => this.eventListeners.delete(f);
  }

  private changed(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.version++;
      for (const f of this.listeners) f();
    });
  }

  close(): void {
    this.stop.abort();
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
  }

  private count(s: LifecycleState, d: number): void {
    this.counts.set(s, (this.counts.get(s) ?? 0) + d);
  }

  private upsert(r: Row): void {
    const old = this.rows.get(r.id);
    if (old !== undefined) this.count(old.state, -1);
    this.count(r.state, 1);
    if (old === undefined) {
      let lo = 0;
      let hi = this.ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((this.ids[mid] as string) < r.id) lo = mid + 1;
        else hi = mid;
      }
      this.ids.splice(lo, 0, r.id);
    }
    this.rows.set(r.id, r);
  }

  /** Lists every agent; returns the highest sequence the listing reflects. */
  private async loadAll(): Promise<number> {
    let max = 0;
    for await (const a of this.mgr.iterateAgents({ pageSize: 1000 })) {
      const old = this.rows.get(a.agentId);
      // An event applied meanwhile may be newer than the listing.
      if (old === undefined || old.lastSequence <= a.lastSequence) this.upsert(rowOf(a));
      if (a.lastSequence > max) max = a.lastSequence;
    }
    this.listedUpTo = max;
    this.loaded = true;
    this.changed();
    return max;
  }

  /** Puts the stored events from `from` to `upTo` (at most FEED_MAX) in the feed, read with
   * a second, short watch (none if they are pruned). */
  private async backfill(from: number, upTo: number): Promise<void> {
    from = Math.max(1, from, upTo - FEED_MAX + 1);
    if (upTo === 0 || from > upTo) return;
    const ac = new AbortController();
    const stop = () => ac.abort();
    this.stop.signal.addEventListener("abort", stop, { once: true });
    const seed: LifecycleEvent[] = [];
    // The replay ends at upTo; should it not come, the seed is given up, not the connection kept.
    const timer = setTimeout(stop, 10_000);
    try {
      for await (const e of this.mgr.watchEvents(undefined, undefined, undefined, { fromSequence: from, signal: ac.signal })) {
        if (e.sequence > upTo) break;
        if (!e.bookmark) seed.push(e);
        if (e.sequence === upTo) break;
      }
    } catch {
      return; // pruned, or the server went away: the feed starts with live events
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", stop);
      ac.abort();
    }
    if (seed.at(-1)?.sequence !== upTo) return;
    const live = this.feed.filter((e) => e.sequence > upTo);
    const early = this.feed.filter((e) => e.sequence <= upTo);
    const by = new Map([...early, ...seed].map((e) => [e.sequence, e]));
    this.feed = [...[...by.values()].sort((a, b) => a.sequence - b.sequence), ...live];
    this.changed();
  }

  /** Runs the watch until close(): list, then apply events; on a disconnect, watch again
   * from the sequence after the last one applied (stored events first: no gap). */
  async run(): Promise<void> {
    let backoff = 250;
    let needList = true;
    let first = true;
    while (!this.stop.signal.aborted) {
      // watchEvents' iterator is an EventIterator: `opened` says when the stream is open.
      const it = this.mgr.watchEvents(undefined, undefined, undefined, {
        fromSequence: needList ? 0 : this.lastSequence + 1,
        signal: this.stop.signal,
      }) as EventIterator<LifecycleEvent>;
      try {
        // The stream is open before the listing, so nothing falls between the two.
        await it.opened;
        if (needList) {
          // What the feed last showed, before the listing moves the marks on.
          const shown = Math.max(this.lastSequence, this.feed.at(-1)?.sequence ?? 0);
          const max = await this.loadAll();
          needList = false;
          // The feed: at first the last FEED_SEED stored events, after a relisting every
          // event since the last one it showed.
          void this.backfill(first ? max - FEED_SEED + 1 : shown + 1, max);
          first = false;
        }
        this.connection = "live";
        this.lastError = "";
        this.changed();
        for await (const e of it) {
          backoff = 250;
          this.apply(e);
        }
      } catch (e) {
        if (this.stop.signal.aborted) return;
        this.lastError = errorText(e);
        // Events this old are no longer stored: start over from a fresh listing.
        if (e instanceof LifecycleError && e.code === "OUT_OF_RANGE") needList = true;
      }
      // Resuming after the last delivered event is exact once the stream has delivered up to
      // the listing: it delivers in order, from when it opened. Before that, an event made
      // while the listing ran, for an agent already listed, may not have come yet, and its
      // sequence may be below the listing's highest: list again instead.
      if (this.lastSequence < this.listedUpTo) {
        needList = true;
      }
      if (this.stop.signal.aborted) return;
      this.connection = "reconnecting";
      this.reconnects++;
      this.changed();
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 4000);
    }
  }

  apply(e: LifecycleEvent): void {
    if (e.bookmark) {
      if (e.sequence > this.lastSequence) this.lastSequence = e.sequence;
      return;
    }
    if (e.sequence > this.lastSequence) this.lastSequence = e.sequence;
    this.received++;
    this.feed.push(e);
    if (this.feed.length > FEED_MAX + FEED_MAX / 2) this.feed = this.feed.slice(-FEED_MAX);
    const r = this.rows.get(e.agentId);
    if (r === undefined) {
      this.upsert({
        id: e.agentId,
        state: e.newState,
        previousState: e.previousState,
        since: e.timestamp.getTime(),
        labels: {},
        supervision: undefined,
        revision: e.revision,
        lastSequence: e.sequence,
        detailsRevision: -1,
      });
      // A new agent: its labels matter to the filters whether or not it is on screen.
      this.want([e.agentId]);
    } else if (e.sequence > r.lastSequence) {
      if (r.state !== e.newState) {
        r.since = e.timestamp.getTime();
        this.count(r.state, -1);
        this.count(e.newState, 1);
      }
      r.previousState = e.previousState;
      r.state = e.newState;
      r.revision = e.revision;
      r.lastSequence = e.sequence;
    }
    for (const f of this.eventListeners) f(e);
    this.changed();
  }

  /** Reads labels and supervision of these agents where they are older than the agent's
   * revision (the table asks for its visible rows): batches of 16 GetState calls, at most
   * four batches a second, so rows that change every frame cost the server little. */
  want(ids: string[]): void {
    for (const id of ids) {
      const r = this.rows.get(id);
      if (r !== undefined && r.detailsRevision < r.revision) this.wanted.add(id);
    }
    void this.fetchDetails();
  }

  private async fetchDetails(): Promise<void> {
    if (this.fetching) return;
    this.fetching = true;
    try {
      while (this.wanted.size > 0 && !this.stop.signal.aborted) {
        const batch = [...this.wanted].slice(0, 16);
        for (const id of batch) this.wanted.delete(id);
        const got = await Promise.allSettled(batch.map((id) => this.mgr.getState(id, true)));
        for (const g of got) {
          if (g.status !== "fulfilled") continue;
          const a = g.value;
          const r = this.rows.get(a.agentId);
          if (r === undefined) continue;
          r.labels = a.labels ?? {};
          r.supervision = a.supervision;
          r.detailsRevision = a.revision;
          if (a.lastSequence > r.lastSequence) {
            this.count(r.state, -1);
            this.count(a.state, 1);
            r.state = a.state;
            r.previousState = a.previousState;
            r.since = a.lastTransition.getTime();
            r.revision = a.revision;
            r.lastSequence = a.lastSequence;
          }
        }
        this.changed();
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      this.fetching = false;
    }
  }
}

/** "3s", "4m 10s", "2h 5m", "3d 4h". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** Parses "k=v, k2=v2" (a label selector or labels); throws naming the bad part. */
export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const i = p.indexOf("=");
    if (i <= 0) throw new Error(`"${p}" is not key=value`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}
