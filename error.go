package lifecycle

import (
	"context"
	"errors"
	"fmt"
)

// Code is the closed set of error codes; every transport maps them once. Their names and
// meanings follow gRPC's. Refusals by the lifecycle itself are not errors: they are
// answered in TransitionResult.
type Code uint8

// The error codes.
const (
	CodeUnknown            Code = iota // not an *Error
	CodeInvalidArgument                // malformed or out-of-bounds input; the message names the field
	CodeNotFound                       // unknown agent or hook
	CodeAlreadyExists                  // agent id or hook name taken
	CodeFailedPrecondition             // operation not allowed in the current state
	CodeOutOfRange                     // resume point older than retention
	CodeResourceExhausted              // a watcher fell too far behind
	CodeAborted                        // a concurrent change won (store compare-and-swap)
	CodePermissionDenied
	CodeUnauthenticated
	CodeDeadlineExceeded
	CodeCanceled
	CodeUnavailable // closed manager or store, unreachable database
	CodeInternal
)

var codeNames = [...]string{
	CodeUnknown:            "unknown",
	CodeInvalidArgument:    "invalid_argument",
	CodeNotFound:           "not_found",
	CodeAlreadyExists:      "already_exists",
	CodeFailedPrecondition: "failed_precondition",
	CodeOutOfRange:         "out_of_range",
	CodeResourceExhausted:  "resource_exhausted",
	CodeAborted:            "aborted",
	CodePermissionDenied:   "permission_denied",
	CodeUnauthenticated:    "unauthenticated",
	CodeDeadlineExceeded:   "deadline_exceeded",
	CodeCanceled:           "canceled",
	CodeUnavailable:        "unavailable",
	CodeInternal:           "internal",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", c)
}

// Error is the error type of this package and of every Store.
type Error struct {
	Code    Code
	Message string
	// ResumeSequence is set on a watch that ended (lagged watcher, closed manager): watch
	// again with this FromSequence to continue with no gap and no duplicate.
	ResumeSequence uint64
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeCanceled or
// CodeDeadlineExceeded for context errors, and CodeUnknown otherwise.
func ErrorCode(err error) Code {
	if err == nil {
		return CodeUnknown // before e, which escapes to the heap through errors.As
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	return CodeUnknown
}
