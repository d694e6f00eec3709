/** The closed set of error codes (gRPC's, with the same meanings), by name. */
export const ErrorCode = {
  Canceled: "CANCELED",
  Unknown: "UNKNOWN",
  InvalidArgument: "INVALID_ARGUMENT",
  DeadlineExceeded: "DEADLINE_EXCEEDED",
  NotFound: "NOT_FOUND",
  AlreadyExists: "ALREADY_EXISTS",
  PermissionDenied: "PERMISSION_DENIED",
  ResourceExhausted: "RESOURCE_EXHAUSTED",
  FailedPrecondition: "FAILED_PRECONDITION",
  Aborted: "ABORTED",
  OutOfRange: "OUT_OF_RANGE",
  Unimplemented: "UNIMPLEMENTED",
  Internal: "INTERNAL",
  Unavailable: "UNAVAILABLE",
  DataLoss: "DATA_LOSS",
  Unauthenticated: "UNAUTHENTICATED",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const byNumber: ErrorCode[] = [
  "UNKNOWN", // 0 is not an error; never used
  "CANCELED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The name of a gRPC status code number. */
export function codeName(n: number): ErrorCode {
  return byNumber[n] ?? "UNKNOWN";
}

/**
 * An error of the lifecycle service: `code` is from the closed set (`grpcCode` its number).
 * A refused transition is not an error (it resolves with `success: false`). A stream that
 * ended carries `resumeSequence`, the `fromSequence` that resumes it with no gap and no
 * duplicate.
 */
export class LifecycleError extends Error {
  override readonly name = "LifecycleError";
  readonly code: ErrorCode;
  readonly grpcCode: number;
  readonly resumeSequence: number | undefined;

  constructor(grpcCode: number, message: string, resumeSequence?: number, options?: { cause?: unknown }) {
    super(`${codeName(grpcCode)}: ${message}`, options);
    this.grpcCode = grpcCode;
    this.code = codeName(grpcCode);
    this.resumeSequence = resumeSequence !== undefined && resumeSequence > 0 ? resumeSequence : undefined;
  }
}

export function invalidArgument(message: string): LifecycleError {
  return new LifecycleError(3, message);
}

export function canceled(message = "canceled"): LifecycleError {
  return new LifecycleError(1, message);
}
