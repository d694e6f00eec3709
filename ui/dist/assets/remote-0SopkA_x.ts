// The remote core: a server over @connectrpc/connect v2 (Connect or gRPC in Node,
// Connect or gRPC-Web in browsers).
import { create } from "@bufbuild/protobuf";
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import type { Core, Cursor, HookServer, InvocationHandler } from "./core.js";
import { LifecycleError, canceled } from "./errors.js";
import {
  HookWorkerMessageSchema,
  LifecycleManager as LifecycleManagerService,
  type HookWorkerMessage,
} from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";
import { createTransport, type RemoteTransport, type TransportOptions } from "./platform.js";

/** A ConnectError (or anything else) as a LifecycleError. */
export function fromConnect(e: unknown): unknown {
  if (e instanceof LifecycleError) return e;
  if (e instanceof ConnectError) {
    const resume = e.metadata.get("hms-resume-sequence");
    return new LifecycleError(e.code, e.rawMessage, resume ? Number(resume) : undefined, { cause: e });
  }
  if (e instanceof Error && e.name === "AbortError") return canceled(e.message);
  return e;
}

export class RemoteCore implements Core {
  readonly mode = "remote" as const;
  private readonly streams = new Set<AbortController>();

  private constructor(private readonly t: RemoteTransport) {}

  static async open(o: TransportOptions): Promise<RemoteCore> {
    const interceptors: Interceptor[] = [];
    if (o.token) {
      const auth = `Bearer ${o.token}`;
      interceptors.push((next) => (req) => {
        req.header.set("Authorization", auth);
        return next(req);
      });
    }
    return new RemoteCore(await createTransport(o, interceptors));
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    req: MessageShape<I>,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    try {
      const res = await this.t.transport.unary(method, signal, undefined, undefined, req, undefined);
      return res.message;
    } catch (e) {
      throw fromConnect(e);
    }
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    req: MessageShape<I>,
  ): Promise<Cursor<MessageShape<O>>> {
    const ac = new AbortController();
    this.streams.add(ac);
    let it: AsyncIterator<MessageShape<O>>;
    try {
      const res = await this.t.transport.stream(method, ac.signal, undefined, undefined, single(req), undefined);
      it = res.message[Symbol.asyncIterator]();
    } catch (e) {
      this.streams.delete(ac);
      throw fromConnect(e);
    }
    let done = false;
    return {
      next: async () => {
        if (done) throw canceled("the stream was closed");
        try {
          const r = await it.next();
          if (r.done) {
            done = true;
            throw new LifecycleError(14, "the server ended the stream");
          }
          return [r.value];
        } catch (e) {
          done = true;
          this.streams.delete(ac);
          if (ac.signal.aborted) throw canceled("the stream was closed");
          throw fromConnect(e);
        }
      },
      close: () => {
        done = true;
        this.streams.delete(ac);
        ac.abort();
      },
    };
  }

  async serveHooks(callbacks: string[], handler: InvocationHandler): Promise<HookServer> {
    if (!this.t.bidi) {
      throw new LifecycleError(
        12,
        "serving hooks needs ServeHooks, a stream both ways, which a browser's fetch cannot open: serve the callbacks from Node (or another SDK) or use a webhook hook",
      );
    }
    const ac = new AbortController();
    const outbox = new Queue<HookWorkerMessage>();
    outbox.push(create(HookWorkerMessageSchema, { kind: { case: "hello", value: { callbacks } } }));
    const client = createClient(LifecycleManagerService, this.t.transport);
    const stream = client.serveHooks(outbox, { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    // The server answers the hello with an empty invocation once the callbacks are
    // registered (ready); a refused hello (a callback served elsewhere) ends the stream.
    let ready!: () => void;
    let wasReady = false;
    const isReady = new Promise<void>((r) => (ready = r)).then(() => {
      wasReady = true;
    });
    let failed: unknown;
    const loop = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        const inv = r.value;
        if (inv.invocationId === "") {
          ready();
          continue;
        }
        void handler(inv).then(
          (reply) => outbox.push(create(HookWorkerMessageSchema, { kind: { case: "reply", value: { ...reply, invocationId: inv.invocationId } } })),
          (e: unknown) =>
            outbox.push(
              create(HookWorkerMessageSchema, {
                kind: { case: "reply", value: { invocationId: inv.invocationId, error: e instanceof Error ? e.message : String(e) } },
              }),
            ),
        );
      }
    })().catch((e: unknown) => {
      failed = e;
    });
    await Promise.race([loop, isReady]);
    if (failed !== undefined && !ac.signal.aborted) throw fromConnect(failed);
    if (failed === undefined && !wasReady) {
      throw new LifecycleError(14, "the server ended the ServeHooks stream before it was ready");
    }
    this.streams.add(ac);
    return {
      close: async () => {
        this.streams.delete(ac);
        outbox.end();
        ac.abort();
        await loop;
      },
    };
  }

  close(): Promise<void> {
    for (const ac of this.streams) ac.abort();
    this.streams.clear();
    this.t.close();
    return Promise.resolve();
  }
}

// eslint-disable-next-line @typescript-eslint/require-await
async function* single<T>(v: T): AsyncIterable<T> {
  yield v;
}

/** An async iterable fed by push, ended by end. */
class Queue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;

  push(v: T): void {
    if (this.ended) return;
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w({ value: v, done: false });
    } else {
      this.items.push(v);
    }
  }

  end(): void {
    this.ended = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const v = this.items.shift();
        if (v !== undefined) return Promise.resolve({ value: v, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.waiting = r));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (e?: unknown) => {
        this.end();
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      },
    };
  }
}

export { Code };
