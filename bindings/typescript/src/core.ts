import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { HookInvocation, HookWorkerReply } from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";

/** A stream as batches: next() resolves with the next items (at least one), or rejects
 * with the LifecycleError that ended the stream. */
export interface Cursor<T> {
  next(): Promise<T[]>;
  close(): void;
}

/** Answers one hook invocation; the reply's invocationId is filled in by the core. */
export type InvocationHandler = (inv: HookInvocation) => Promise<Omit<Partial<HookWorkerReply>, "$typeName">>;

/** A hook worker serving callbacks until closed. */
export interface HookServer {
  close(): Promise<void>;
}

/** Where calls go: the in-process WebAssembly core or a server. */
export interface Core {
  readonly mode: "embedded" | "remote";
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    req: MessageShape<I>,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>>;
  stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    req: MessageShape<I>,
  ): Promise<Cursor<MessageShape<O>>>;
  serveHooks(callbacks: string[], handler: InvocationHandler): Promise<HookServer>;
  close(): Promise<void>;
}
