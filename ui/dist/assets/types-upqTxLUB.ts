// The specification's types (section 3.3), exactly, and the binding's additions, with
// conversions from and to the protobuf messages.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type * as ev from "./gen/hms/agent/lifecycle/v1/lifecycle_event_pb.js";
import type * as mgr from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";
import * as sup from "./gen/hms/agent/lifecycle/v1/supervision_pb.js";
import { RefusalReason as PbRefusal } from "./gen/hms/agent/lifecycle/v1/lifecycle_state_pb.js";

// Lifecycle state enum
export enum LifecycleState {
  Unspecified = 0,
  Initialized = 1,
  Active = 2,
  Paused = 3,
  Suspended = 4,
  ShuttingDown = 5,
  Terminated = 6,
  Maintenance = 7,
  Error = 8,
  Upgrading = 9,
  Recovering = 10,
}

// Transition type enum
export enum TransitionType {
  Unspecified = 0,
  Normal = 1,
  Forced = 2,
  Automatic = 3,
  ErrorTriggered = 4,
  Maintenance = 5,
}

/** Why a transition was refused (TransitionResponse.refusalReason). */
export const RefusalReason = PbRefusal;
export type RefusalReason = PbRefusal;

// Lifecycle event interface
export interface LifecycleEvent {
  eventId: string;
  agentId: string;
  previousState: LifecycleState;
  newState: LifecycleState;
  transitionType: TransitionType;
  timestamp: Date;
  initiatedBy: string;
  reason: string;
  metadata?: Record<string, string>;
  /** The store-wide, gap-free sequence: watchEvents(..., { fromSequence }) resumes after it. */
  sequence: number;
  /** The agent's revision after this event. */
  revision: number;
  /** A bookmark carries no transition: only the resume point (watch with bookmarks). */
  bookmark?: boolean;
  errorInfo?: ErrorInfo;
  hookOutcomes?: HookOutcome[];
}

/** The outcome of one hook for one transition. */
export interface HookOutcome {
  hookId: string;
  hookName: string;
  result: "ALLOWED" | "VETOED" | "FAILED" | "TIMED_OUT" | "UNSPECIFIED";
  message: string;
  latencyUs: number;
  enforced: boolean;
}

// Error information interface
export interface ErrorInfo {
  code: number;
  message: string;
  timestamp: Date;
  isRecoverable: boolean;
  recoveryActions?: string[];
}

// Get state response
export interface GetStateResponse {
  state: LifecycleState;
  timeInStateMs: number;
  previousState: LifecycleState;
  metadata?: Record<string, string>;
  isTransitioning: boolean;
  lastTransition: Date;
  errorInfo?: ErrorInfo;
  // Additions.
  agentId: string;
  revision: number;
  labels?: Record<string, string>;
  createdAt?: Date;
  allowedNextStates: LifecycleState[];
  lastSequence: number;
  supervision?: SupervisionStatus;
}

// Transition request
export interface TransitionRequest {
  agentId: string;
  targetState: LifecycleState;
  force?: boolean;
  reason?: string;
  timeoutMs?: number;
  metadata?: Record<string, string>;
  /** Precondition: refused (FAILED_PRECONDITION reason) unless the agent is in this state. */
  expectedState?: LifecycleState;
  /** Precondition: refused unless the agent is at this revision. */
  expectedRevision?: number;
  /** Error details, for a transition into ERROR. */
  errorInfo?: Partial<ErrorInfo> & { code: number; message: string };
}

// Transition response
export interface TransitionResponse {
  success: boolean;
  previousState: LifecycleState;
  currentState: LifecycleState;
  event?: LifecycleEvent;
  errorMessage?: string;
  /** Why it was refused (success false). */
  refusalReason?: RefusalReason;
  allowedNextStates?: LifecycleState[];
  hookOutcomes?: HookOutcome[];
  revision: number;
}

/** A supervision policy (docs/supervision.md): the SupervisionPolicy message's fields,
 * e.g. `{ restart: RestartPolicy.ON_ERROR, maxRecoveries: 3, heartbeatTimeoutMs: 5000 }`. */
export type SupervisionPolicy = Partial<Omit<sup.SupervisionPolicy, "$typeName">>;
/** An agent's supervision as GetState reports it (policy, next scheduled action, …). */
export type SupervisionStatus = sup.SupervisionStatus;
export { RestartPolicy, GiveUpAction } from "./gen/hms/agent/lifecycle/v1/supervision_pb.js";

/** A registered hook, with its delivery statistics. */
export interface Hook {
  hookId: string;
  hookName: string;
  triggerStates: LifecycleState[];
  triggerTransitions: TransitionType[];
  isBlocking: boolean;
  timeoutMs: number;
  config: Record<string, string>;
  agentIds: string[];
  createdAt?: Date;
  invocations: number;
  allowed: number;
  vetoed: number;
  failed: number;
  timedOut: number;
  deliveredSequence: number;
  /** The latest outcome (result, message, latency), when the hook has run. */
  lastOutcome?: HookOutcome;
  /** Callback hooks: whether a hook worker serving the callback is connected. */
  workerConnected: boolean;
}

/** One invocation of a hook served by a JavaScript function (handleCallback). */
export interface HookInvocation {
  invocationId: string;
  callback: string;
  hookId: string;
  hookName: string;
  blocking: boolean;
  /** The transition: for a blocking hook, the event it would commit. */
  event: LifecycleEvent;
  idempotencyKey: string;
  attempt: number;
  deadline?: Date;
}

/** What a hook function returns: nothing or true to allow, false or a Veto to veto; throwing
 * (or rejecting) is the hook's failure, handled by its failure policy. */
export type HookDecision = void | undefined | boolean | Veto;
export type HookFunction = (invocation: HookInvocation) => HookDecision | Promise<HookDecision>;

/** Vetoes a blocking hook's transition with a reason. */
export class Veto {
  readonly veto = true;
  constructor(readonly reason: string) {}
}

const num = (v: bigint | number | undefined): number => (v === undefined ? 0 : Number(v));
const date = (t: Timestamp | undefined): Date | undefined => (t === undefined ? undefined : timestampDate(t));
const nonEmpty = <T extends object>(o: T | undefined): T | undefined =>
  o !== undefined && Object.keys(o).length > 0 ? o : undefined;

const outcomeNames = ["UNSPECIFIED", "ALLOWED", "VETOED", "FAILED", "TIMED_OUT"] as const;

export function hookOutcome(o: ev.HookOutcome): HookOutcome {
  return {
    hookId: o.hookId,
    hookName: o.hookName,
    result: outcomeNames[o.result] ?? "UNSPECIFIED",
    message: o.message,
    latencyUs: num(o.latencyUs),
    enforced: o.enforced,
  };
}

export function errorInfo(e: ev.ErrorInfo | undefined): ErrorInfo | undefined {
  if (e === undefined) return undefined;
  const out: ErrorInfo = {
    code: e.code,
    message: e.message,
    timestamp: date(e.timestamp) ?? new Date(0),
    isRecoverable: e.isRecoverable,
  };
  if (e.recoveryActions.length > 0) out.recoveryActions = e.recoveryActions;
  return out;
}

export function errorInfoToPb(e: TransitionRequest["errorInfo"]): Parameters<typeof create<typeof import("./gen/hms/agent/lifecycle/v1/lifecycle_event_pb.js").ErrorInfoSchema>>[1] | undefined {
  if (e === undefined) return undefined;
  return {
    code: e.code,
    message: e.message,
    isRecoverable: e.isRecoverable ?? false,
    recoveryActions: e.recoveryActions ?? [],
    timestamp: e.timestamp ? timestampFromDate(e.timestamp) : undefined,
  };
}

export function lifecycleEvent(e: ev.LifecycleEvent): LifecycleEvent {
  const out: LifecycleEvent = {
    eventId: e.eventId,
    agentId: e.agentId,
    previousState: e.previousState as number,
    newState: e.newState as number,
    transitionType: e.transitionType as number,
    timestamp: date(e.timestamp) ?? new Date(0),
    initiatedBy: e.initiatedBy,
    reason: e.reason,
    sequence: num(e.sequence),
    revision: num(e.revision),
  };
  const md = nonEmpty(e.metadata);
  if (md) out.metadata = md;
  if (e.bookmark) out.bookmark = true;
  const ei = errorInfo(e.errorInfo);
  if (ei) out.errorInfo = ei;
  if (e.hookOutcomes.length > 0) out.hookOutcomes = e.hookOutcomes.map(hookOutcome);
  return out;
}

export function getStateResponse(s: mgr.GetStateResponse): GetStateResponse {
  const out: GetStateResponse = {
    state: s.state as number,
    timeInStateMs: num(s.timeInStateMs),
    previousState: s.previousState as number,
    isTransitioning: s.isTransitioning,
    lastTransition: date(s.lastTransition) ?? new Date(0),
    agentId: s.agentId,
    revision: num(s.revision),
    allowedNextStates: s.allowedNextStates as number[],
    lastSequence: num(s.lastSequence),
  };
  const md = nonEmpty(s.metadata);
  if (md) out.metadata = md;
  const lb = nonEmpty(s.labels);
  if (lb) out.labels = lb;
  const ca = date(s.createdAt);
  if (ca) out.createdAt = ca;
  const ei = errorInfo(s.errorInfo);
  if (ei) out.errorInfo = ei;
  if (s.supervision) out.supervision = s.supervision;
  return out;
}

export function transitionResponse(r: ev.TransitionResponse): TransitionResponse {
  const out: TransitionResponse = {
    success: r.success,
    previousState: r.previousState as number,
    currentState: r.currentState as number,
    revision: num(r.revision),
  };
  if (r.event) out.event = lifecycleEvent(r.event);
  if (r.errorMessage) out.errorMessage = r.errorMessage;
  if (r.refusalReason) out.refusalReason = r.refusalReason;
  if (r.allowedNextStates.length > 0) out.allowedNextStates = r.allowedNextStates as number[];
  if (r.hookOutcomes.length > 0) out.hookOutcomes = r.hookOutcomes.map(hookOutcome);
  return out;
}

export function hook(h: mgr.Hook): Hook {
  const s = h.spec;
  const out: Hook = {
    hookId: h.hookId,
    hookName: s?.hookName ?? "",
    triggerStates: (s?.triggerStates ?? []) as number[],
    triggerTransitions: (s?.triggerTransitions ?? []) as number[],
    isBlocking: s?.isBlocking ?? false,
    timeoutMs: s?.timeoutMs ?? 0,
    config: { ...(s?.config ?? {}) },
    agentIds: s?.agentIds ?? [],
    invocations: num(h.invocations),
    allowed: num(h.allowed),
    vetoed: num(h.vetoed),
    failed: num(h.failed),
    timedOut: num(h.timedOut),
    deliveredSequence: num(h.deliveredSequence),
    workerConnected: h.workerConnected,
  };
  const ca = date(h.createdAt);
  if (ca) out.createdAt = ca;
  if (h.lastOutcome) out.lastOutcome = hookOutcome(h.lastOutcome);
  return out;
}

export function hookInvocation(i: mgr.HookInvocation): HookInvocation {
  const r = i.request;
  const out: HookInvocation = {
    invocationId: i.invocationId,
    callback: i.callback,
    hookId: r?.hookId ?? "",
    hookName: r?.hookName ?? "",
    blocking: r?.blocking ?? false,
    event: r?.event ? lifecycleEvent(r.event) : lifecycleEvent({ sequence: 0n, revision: 0n, metadata: {}, hookOutcomes: [] } as unknown as ev.LifecycleEvent),
    idempotencyKey: r?.idempotencyKey ?? "",
    attempt: r?.attempt ?? 0,
  };
  const d = date(r?.deadline);
  if (d) out.deadline = d;
  return out;
}

export function supervisionPolicyToPb(p: SupervisionPolicy): sup.SupervisionPolicy {
  return create(sup.SupervisionPolicySchema, p);
}
