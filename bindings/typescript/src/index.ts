/**
 * hms-agent-lifecycle: the HMS agent lifecycle, in-process (the Go core compiled to
 * WebAssembly) or against a server (Connect, gRPC, gRPC-Web), in Node and browsers.
 */
export {
  LifecycleManager,
  PluginService,
  type LifecycleManagerOptions,
  type WatchOptions,
  type HistoryOptions,
  type RegisterAgentOptions,
  type ListAgentsOptions,
  type EventIterator,
} from "./manager.js";
export {
  LifecycleState,
  TransitionType,
  RefusalReason,
  RestartPolicy,
  GiveUpAction,
  Veto,
  type LifecycleEvent,
  type ErrorInfo,
  type GetStateResponse,
  type TransitionRequest,
  type TransitionResponse,
  type HookOutcome,
  type Hook,
  type HookInvocation,
  type HookDecision,
  type HookFunction,
  type SupervisionPolicy,
  type SupervisionStatus,
} from "./types.js";
export { LifecycleError, ErrorCode, codeName } from "./errors.js";
export type { WasmSource } from "./platform.js";
