// LifecycleManager: the specification's API (section 3.3) and the binding's additions, on
// the in-process WebAssembly core or a server, with the same semantics.
import { create, toJson, type JsonValue, type DescMessage, type DescMethodUnary, type DescMethodServerStreaming, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Core, Cursor, HookServer } from "./core.js";
import { LifecycleError, canceled, invalidArgument } from "./errors.js";
import { LifecycleManager as Svc } from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";
import { PluginLifecycleManager as PluginSvc } from "./gen/hms/plugin/lifecycle/v1/plugin_lifecycle_pb.js";
import type { WasmSource } from "./platform.js";
import {
  type GetStateResponse,
  type Hook,
  type HookFunction,
  type LifecycleEvent,
  LifecycleState,
  type SupervisionPolicy,
  type SupervisionStatus,
  type TransitionRequest,
  type TransitionResponse,
  TransitionType,
  Veto,
  errorInfoToPb,
  getStateResponse,
  hook,
  hookInvocation,
  lifecycleEvent,
  transitionResponse,
} from "./types.js";

/** How to construct a LifecycleManager. With no endpoint the core runs in-process. */
export interface LifecycleManagerOptions {
  /** A server, e.g. "http://127.0.0.1:7460": remote mode. In Node, HMS_ENDPOINT (and
   * HMS_TOKEN) set the default when no options are given. */
  endpoint?: string;
  /** A bearer token for the server. */
  token?: string;
  /** The protocol: "connect" (default), "grpc" (Node only) or "grpc-web". */
  transport?: "connect" | "grpc" | "grpc-web";
  /** Embedded: the principal recorded as initiatedBy (default "wasm"). */
  initiator?: string;
  /** Embedded: the default supervision policy. */
  supervision?: SupervisionPolicy;
  /** Embedded: the WebAssembly module (bytes, a compiled module, or its URL or path);
   * default: hms_lifecycle.wasm beside the package's index.js. */
  wasm?: WasmSource;
  /** Embedded: the module with the plugin service, loaded when `plugins` is first used;
   * default: hms_lifecycle_plugins.wasm beside the package's index.js. */
  pluginsWasm?: WasmSource;
  /** Embedded, Node only: the plugin repository (a directory of plugin packages) the
   * plugin service scans; the module reads it through WASI. Default: none (the registry
   * stays empty; scan fails with FAILED_PRECONDITION). */
  pluginRepository?: string;
  /** Embedded: the core's port catalogue that manifests are checked against (default:
   * the Go core's). */
  corePorts?: string[];
}

/** Options of watchEvents beyond the specification's filters. */
export interface WatchOptions {
  /** Resume: deliver events from this sequence on (stored ones first), no gap, no duplicate. */
  fromSequence?: number;
  /** Bookmarks at most this often, so a filtered watcher's resume point stays fresh. */
  bookmarkIntervalMs?: number;
  /** Ends the watch: the iterator finishes (a `for await` loop ends). */
  signal?: AbortSignal;
}

/** Filters of history paging. */
export interface HistoryOptions {
  transitionType?: TransitionType;
  startTime?: Date;
  endTime?: Date;
  /** Events per page (default: the server's). */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface RegisterAgentOptions {
  metadata?: Record<string, string>;
  labels?: Record<string, string>;
  supervisionPolicy?: SupervisionPolicy;
}

export interface ListAgentsOptions {
  states?: LifecycleState[];
  labelSelector?: Record<string, string>;
  pageSize?: number;
  pageToken?: string;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.[name];
  return v === "" ? undefined : v;
}

/**
 * The lifecycle manager: in-process (the Go core compiled to WebAssembly, on the memory
 * store) with no endpoint, or a server's client with one. Initialization is lazy: the
 * first call waits for it (or call ready()).
 */
export class LifecycleManager {
  private readonly options: LifecycleManagerOptions;
  private corePromise: Promise<Core> | undefined;
  private pluginCorePromise: Promise<Core> | undefined;
  private closed = false;
  private readonly callbacks = new Map<string, Promise<HookServer>>();
  private readonly iterators = new Set<{ return(): Promise<unknown> }>();
  /** The plugin service. Embedded, it is the registry of the Go core on a memory store of
   * its own (a second WebAssembly module, loaded on first use); it starts no process:
   * activating a version with a runtime block fails with FAILED_PRECONDITION. */
  readonly plugins: PluginService;

  constructor(options?: LifecycleManagerOptions) {
    if (options === undefined) {
      const endpoint = env("HMS_ENDPOINT");
      options = endpoint !== undefined ? { endpoint, token: env("HMS_TOKEN") ?? "" } : {};
    }
    this.options = options;
    this.plugins = new PluginService(this);
    if (!options.endpoint) {
      // The module compiles on V8's background threads while the program goes on (and
      // while the first call loads the rest of the binding); the first call instantiates it.
      const wasm = options.wasm;
      import("./platform.js").then((p) => p.precompile(wasm, "hms_lifecycle.wasm"), () => undefined);
    }
  }

  /** "embedded" or "remote". */
  get mode(): "embedded" | "remote" {
    return this.options.endpoint ? "remote" : "embedded";
  }

  /** @internal */
  core(): Promise<Core> {
    if (this.closed) return Promise.reject(new LifecycleError(14, "the manager was closed"));
    this.corePromise ??= this.open();
    return this.corePromise;
  }

  private async open(): Promise<Core> {
    const o = this.options;
    if (o.endpoint) {
      const { RemoteCore } = await import("./remote.js");
      return RemoteCore.open({ endpoint: o.endpoint.replace(/\/+$/, ""), transport: o.transport ?? "connect", token: o.token });
    }
    const { WasmCore } = await import("./wasm.js");
    const config: Record<string, unknown> = {};
    if (o.initiator) config["initiator"] = o.initiator;
    if (o.supervision) {
      const { toBinary } = await import("@bufbuild/protobuf");
      const { SupervisionPolicySchema } = await import("./gen/hms/agent/lifecycle/v1/supervision_pb.js");
      config["supervision"] = base64(toBinary(SupervisionPolicySchema, create(SupervisionPolicySchema, o.supervision)));
    }
    return WasmCore.open(config, o.wasm);
  }

  /** Where a method goes: embedded, the plugin service is in its own module. @internal */
  coreFor(method: { parent: { typeName: string } }): Promise<Core> {
    if (method.parent.typeName === Svc.typeName || this.mode === "remote") return this.core();
    if (this.closed) return Promise.reject(new LifecycleError(14, "the manager was closed"));
    this.pluginCorePromise ??= this.openPlugins();
    return this.pluginCorePromise;
  }

  private async openPlugins(): Promise<Core> {
    const o = this.options;
    const { WasmCore, PLUGIN_ROOT } = await import("./wasm.js");
    const config: Record<string, unknown> = {};
    if (o.initiator) config["initiator"] = o.initiator;
    if (o.pluginRepository !== undefined && o.pluginRepository !== "") config["pluginRepository"] = PLUGIN_ROOT;
    if (o.corePorts !== undefined) config["corePorts"] = o.corePorts;
    return WasmCore.open(config, o.pluginsWasm, { plugins: true, repository: o.pluginRepository || undefined });
  }

  /** Waits until the core is loaded (the WebAssembly module instantiated) or connected. */
  async ready(): Promise<void> {
    await this.core();
  }

  /** Calls a unary RPC of either service by its method descriptor. @internal */
  async call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    req: MessageInitShape<I>,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    if (signal?.aborted) throw canceled(String(signal.reason ?? "aborted"));
    const core = await this.coreFor(method);
    return core.unary(method, create(method.input, req), signal);
  }

  /**
   * Get the current state of an agent
   */
  async getState(agentId: string, includeDetails: boolean = false): Promise<GetStateResponse> {
    return getStateResponse(await this.call(Svc.method.getState, { agentId, includeDetails }));
  }

  /**
   * Transition an agent to a new state. A refusal (a forbidden edge, a failed
   * precondition, a hook's veto, a timeout) resolves with success false and the reason.
   */
  async transitionState(request: TransitionRequest, options?: { signal?: AbortSignal }): Promise<TransitionResponse> {
    if (request === null || typeof request !== "object") throw invalidArgument("transitionState: pass a TransitionRequest object");
    const r = await this.call(
      Svc.method.transitionState,
      {
        agentId: request.agentId,
        targetState: request.targetState as number,
        force: request.force ?? false,
        reason: request.reason ?? "",
        timeoutMs: request.timeoutMs ?? 0,
        metadata: request.metadata ?? {},
        expectedState: (request.expectedState ?? 0) as number,
        expectedRevision: BigInt(request.expectedRevision ?? 0),
        errorInfo: errorInfoToPb(request.errorInfo),
      },
      options?.signal,
    );
    return transitionResponse(r);
  }

  /**
   * Get the transition history for an agent (the first `limit` events, oldest first;
   * historyPages or iterateHistory go through all of it).
   */
  async getTransitionHistory(
    agentId: string,
    limit: number = 10,
    transitionType?: TransitionType,
    startTime?: Date,
    endTime?: Date,
  ): Promise<LifecycleEvent[]> {
    const page = await this.historyPage(agentId, { transitionType, startTime, endTime, pageSize: limit });
    return page.events;
  }

  /** One page of history, with the token of the next ("" at the end). */
  async historyPage(
    agentId: string,
    options: HistoryOptions & { pageToken?: string } = {},
  ): Promise<{ events: LifecycleEvent[]; nextPageToken: string }> {
    const r = await this.call(
      Svc.method.getTransitionHistory,
      {
        agentId,
        limit: options.pageSize ?? 0,
        transitionType: (options.transitionType ?? 0) as number,
        startTime: options.startTime ? timestampFromDate(options.startTime) : undefined,
        endTime: options.endTime ? timestampFromDate(options.endTime) : undefined,
        pageToken: options.pageToken ?? "",
      },
      options.signal,
    );
    return { events: r.events.map(lifecycleEvent), nextPageToken: r.nextPageToken };
  }

  /** Every page of an agent's history ("" for all agents), page by page. */
  async *historyPages(agentId: string, options: HistoryOptions = {}): AsyncGenerator<LifecycleEvent[], void, undefined> {
    let pageToken = "";
    do {
      const page = await this.historyPage(agentId, { ...options, pageToken });
      yield page.events;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** All of an agent's history, event by event, over every page. */
  async *iterateHistory(agentId: string, options: HistoryOptions = {}): AsyncGenerator<LifecycleEvent, void, undefined> {
    for await (const page of this.historyPages(agentId, options)) yield* page;
  }

  /**
   * Watch for lifecycle events. The iterator ends when `return()` is called (`break` in
   * `for await`) or the signal aborts; it throws a LifecycleError when the stream ends
   * otherwise (its resumeSequence says where to watch again from).
   */
  watchEvents(
    agentId?: string,
    states?: LifecycleState[],
    transitionTypes?: TransitionType[],
    options: WatchOptions = {},
  ): AsyncIterableIterator<LifecycleEvent> {
    const req = {
      agentId: agentId ?? "",
      states: (states ?? []) as number[],
      transitionTypes: (transitionTypes ?? []) as number[],
      fromSequence: BigInt(options.fromSequence ?? 0),
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 0,
    };
    const it = new EventIterator<LifecycleEvent, MessageShape<typeof Svc.method.watchEvents.output>>(
      async () => {
        const core = await this.core();
        return core.stream(Svc.method.watchEvents, create(Svc.method.watchEvents.input, req));
      },
      lifecycleEvent,
      options.signal,
      () => this.iterators.delete(it),
    );
    this.iterators.add(it);
    return it;
  }

  /**
   * Register a lifecycle hook. A hook served by a JavaScript function has
   * `config: { callback: name }` and a handleCallback(name, fn).
   */
  async registerHook(
    hookName: string,
    triggerStates: LifecycleState[],
    triggerTransitions: TransitionType[],
    isBlocking: boolean = false,
    timeoutMs: number = 30000,
    config?: Record<string, string>,
    agentIds?: string[],
  ): Promise<{ success: boolean; hookId: string; errorMessage?: string }> {
    const r = await this.call(Svc.method.registerHook, {
      hookName,
      triggerStates: triggerStates as number[],
      triggerTransitions: triggerTransitions as number[],
      isBlocking,
      timeoutMs,
      config: config ?? {},
      agentIds: agentIds ?? [],
    });
    const out: { success: boolean; hookId: string; errorMessage?: string } = { success: r.success, hookId: r.hookId };
    if (r.errorMessage) out.errorMessage = r.errorMessage;
    return out;
  }

  /**
   * Serve the callback hooks named `name` (`config: { callback: name }`) with fn, sync or
   * async: it returns nothing or true to allow, false or `new Veto(reason)` to veto;
   * throwing is the hook's failure (its failure policy applies). Embedded, invocations are
   * pulled from the core and completed (Go never calls into JavaScript); remote, they come
   * over the ServeHooks stream (Node; browsers cannot open it).
   */
  async handleCallback(name: string, fn: HookFunction): Promise<void> {
    if (this.callbacks.has(name)) throw new LifecycleError(6, `callback "${name}" is already served by this manager`);
    const server = (async () => {
      const core = await this.core();
      return core.serveHooks([name], async (inv) => {
        const d = await fn(hookInvocation(inv));
        if (d === false) return { veto: true, reason: "vetoed" };
        if (d instanceof Veto || (typeof d === "object" && d !== null && (d as Veto).veto === true)) {
          return { veto: true, reason: (d).reason ?? "" };
        }
        return {};
      });
    })();
    this.callbacks.set(name, server);
    try {
      await server;
    } catch (e) {
      this.callbacks.delete(name);
      throw e;
    }
  }

  /** Stop serving a callback (its pending invocations fail). */
  async removeCallback(name: string): Promise<void> {
    const s = this.callbacks.get(name);
    this.callbacks.delete(name);
    if (s) await (await s).close();
  }

  /** Register a new agent in state INITIALIZED. */
  async registerAgent(agentId: string, options: RegisterAgentOptions = {}): Promise<{ agent: GetStateResponse; event?: LifecycleEvent }> {
    const r = await this.call(Svc.method.registerAgent, {
      agentId,
      metadata: options.metadata ?? {},
      labels: options.labels ?? {},
      supervisionPolicy: options.supervisionPolicy,
    });
    const out: { agent: GetStateResponse; event?: LifecycleEvent } = {
      agent: getStateResponse(r.agent ?? create(Svc.method.getState.output)),
    };
    if (r.event) out.event = lifecycleEvent(r.event);
    return out;
  }

  /** One page of agents, in agent id order. */
  async listAgents(options: ListAgentsOptions = {}): Promise<{ agents: GetStateResponse[]; nextPageToken: string }> {
    const r = await this.call(Svc.method.listAgents, {
      states: (options.states ?? []) as number[],
      labelSelector: options.labelSelector ?? {},
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? "",
    });
    return { agents: r.agents.map(getStateResponse), nextPageToken: r.nextPageToken };
  }

  /** Every agent matching the filters, over every page. */
  async *iterateAgents(options: Omit<ListAgentsOptions, "pageToken"> = {}): AsyncGenerator<GetStateResponse, void, undefined> {
    let pageToken = "";
    do {
      const page = await this.listAgents({ ...options, pageToken });
      yield* page.agents;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** Remove a hook. */
  async unregisterHook(hookId: string): Promise<void> {
    await this.call(Svc.method.unregisterHook, { hookId });
  }

  /** The registered hooks with their delivery statistics. */
  async listHooks(): Promise<Hook[]> {
    return (await this.call(Svc.method.listHooks, {})).hooks.map(hook);
  }

  /** Report agents alive; returns the ids that are not known. */
  async heartbeat(...agentIds: (string | string[])[]): Promise<string[]> {
    const ids = agentIds.flat();
    return (await this.call(Svc.method.heartbeat, { agentIds: ids })).unknownAgentIds;
  }

  /**
   * Delete an agent in a terminal state (TERMINATED): its record goes, its history stays
   * until retention removes it, and its id is never used again. Resolves with the deletion
   * event (TERMINATED → Unspecified), which watchers see too; an agent in any other state
   * rejects with FAILED_PRECONDITION.
   */
  async deleteAgent(agentId: string, reason = ""): Promise<LifecycleEvent> {
    const r = await this.call(Svc.method.deleteAgent, { agentId, reason });
    return lifecycleEvent(r.event ?? create(Svc.method.watchEvents.output));
  }

  /** Set an agent's supervision policy (undefined: follow the default); its supervision. */
  async setSupervisionPolicy(agentId: string, policy?: SupervisionPolicy): Promise<SupervisionStatus | undefined> {
    return (await this.call(Svc.method.setSupervisionPolicy, { agentId, policy })).supervision;
  }

  /**
   * Calls a unary RPC of either service by name ("TransitionState", or the full
   * "hms.agent.lifecycle.v1.LifecycleManager/TransitionState") on a protojson request;
   * resolves with the protojson response. Enum values may be short ("ACTIVE").
   */
  async callJson(method: string, request: JsonValue = {}, signal?: AbortSignal): Promise<JsonValue> {
    const { findMethod, decodeJson, encodeJson } = await import("./json.js");
    const m = findMethod(method);
    if (m.methodKind !== "unary") throw invalidArgument(`method ${m.name} is a stream: use watchJson`);
    const core = await this.coreFor(m);
    const res = await core.unary(m as DescMethodUnary, decodeJson(m.input, request), signal);
    return encodeJson(m.output, res);
  }

  /** Opens a stream of either service by name ("WatchEvents", "WatchPluginEvents") on a
   * protojson request; its items are protojson. */
  watchJson(method: string, request: JsonValue = {}, signal?: AbortSignal): AsyncIterableIterator<JsonValue> {
    const it = new EventIterator<JsonValue, { m: DescMessage; v: MessageShape<DescMessage> }>(
      async () => {
        const { findMethod, decodeJson } = await import("./json.js");
        const m = findMethod(method);
        if (m.methodKind !== "server_streaming") throw invalidArgument(`method ${m.name} is not a server stream`);
        const core = await this.coreFor(m);
        const cur = await core.stream(m as DescMethodServerStreaming, decodeJson(m.input, request));
        return {
          next: async () => (await cur.next()).map((v) => ({ m: m.output, v })),
          close: () => cur.close(),
        };
      },
      (x) => toJson(x.m, x.v),
      signal,
      () => this.iterators.delete(it),
    );
    this.iterators.add(it);
    return it;
  }

  /** Closes the manager: its watches end, its hook workers stop, the core is released.
   * Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const it of this.iterators) void it.return();
    const servers = [...this.callbacks.values()];
    this.callbacks.clear();
    for (const s of servers) {
      try {
        await (await s).close();
      } catch {
        // never opened
      }
    }
    for (const p of [this.corePromise, this.pluginCorePromise]) {
      if (p === undefined) continue;
      try {
        await (await p).close();
      } catch {
        // never opened
      }
    }
  }

}

/** The plugin service (hms.plugin.lifecycle.v1.PluginLifecycleManager), by method: the
 * generated request and response messages. Embedded, the registry runs in-process (see
 * LifecycleManager.plugins); a version with a runtime block cannot be activated there. */
export class PluginService {
  constructor(private readonly m: LifecycleManager) {}

  /** Waits until the plugin service is loaded (embedded: its module instantiated) or
   * connected. */
  async ready(): Promise<void> {
    await this.m.coreFor(PluginSvc.method.scanPlugins);
  }

  /** Calls a unary method by name ("ResolvePlugin", …) with a request message's fields. */
  async call<K extends keyof typeof PluginSvc.method>(
    name: K,
    req: (typeof PluginSvc.method)[K] extends DescMethodUnary<infer I, DescMessage> ? MessageInitShape<I> : never,
  ): Promise<(typeof PluginSvc.method)[K] extends DescMethodUnary<DescMessage, infer O> ? MessageShape<O> : never> {
    const method = PluginSvc.method[name];
    if (method.methodKind !== "unary") throw invalidArgument(`${String(name)} is a stream: use watch()`);
    return (await this.m.call(method as DescMethodUnary, req as never)) as never;
  }

  scan() {
    return this.call("scanPlugins", {});
  }
  list(req: MessageInitShape<typeof PluginSvc.method.listPlugins.input> = {}) {
    return this.call("listPlugins", req);
  }
  get(id: string, version = "") {
    return this.call("getPlugin", { id, version });
  }
  activate(id: string, version = "", reason = "") {
    return this.call("activatePlugin", { id, version, reason });
  }
  deactivate(id: string, version = "", reason = "") {
    return this.call("deactivatePlugin", { id, version, reason });
  }
  resolve(id: string, constraint: string) {
    return this.call("resolvePlugin", { id, constraint });
  }

  /** Watch plugin events (WatchPluginEvents). */
  watch(req: MessageInitShape<typeof PluginSvc.method.watchPluginEvents.input> = {}, signal?: AbortSignal) {
    const method = PluginSvc.method.watchPluginEvents;
    return new EventIterator(
      async () => {
        const core = await this.m.coreFor(PluginSvc.method.scanPlugins);
        return core.stream(method, create(method.input, req));
      },
      (x: MessageShape<typeof method.output>) => x,
      signal,
      () => {},
    );
  }
}

/**
 * A stream as an AsyncIterableIterator: batches from the core, converted one by one.
 * `return()` (break in for await) and the signal close the stream.
 */
export class EventIterator<T, R = unknown> implements AsyncIterableIterator<T> {
  private cursor: Promise<Cursor<R>> | undefined;
  private buf: R[] = [];
  private pos = 0;
  private done = false;
  private readonly onAbort = (): void => void this.return();

  constructor(
    private readonly open: () => Promise<Cursor<R>>,
    private readonly conv: (r: R) => T,
    private readonly signal: AbortSignal | undefined,
    private readonly onEnd: () => void,
  ) {
    signal?.addEventListener("abort", this.onAbort, { once: true });
    // The stream opens now, not at the first next(): events from here on are delivered.
    this.cursor = this.open();
    this.opened = this.cursor.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Resolves once the stream is open (a failure to open is thrown by next()). */
  readonly opened: Promise<void>;

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    if (this.pos < this.buf.length) {
      const v = this.buf[this.pos++] as R;
      return { value: this.conv(v), done: false };
    }
    if (this.done || this.signal?.aborted) {
      await this.return();
      return { value: undefined, done: true };
    }
    this.cursor ??= this.open();
    let batch: R[];
    try {
      const c = await this.cursor;
      if (this.done) return { value: undefined, done: true };
      batch = await c.next();
    } catch (e) {
      const stopped = this.done || this.signal?.aborted === true;
      await this.return();
      if (stopped && e instanceof LifecycleError && e.code === "CANCELED") return { value: undefined, done: true };
      throw e;
    }
    this.buf = batch;
    this.pos = 1;
    return { value: this.conv(batch[0] as R), done: false };
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    if (!this.done) {
      this.done = true;
      this.signal?.removeEventListener("abort", this.onAbort);
      this.buf = [];
      this.pos = 0;
      this.onEnd();
      if (this.cursor) {
        try {
          (await this.cursor).close();
        } catch {
          // it never opened
        }
      }
    }
    return { value: undefined, done: true };
  }

  async throw(e?: unknown): Promise<IteratorResult<T, undefined>> {
    await this.return();
    throw e instanceof Error ? e : canceled();
  }
}

export { LifecycleState, TransitionType };

/** Standard base64 of b (the module's JSON configuration carries protobuf this way). */
function base64(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}
