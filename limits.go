package lifecycle

import (
	"time"
	"unicode/utf8"
)

// Limits on input. Every request is checked against them before anything is stored; a
// request over a limit gets CodeInvalidArgument naming the field.
const (
	MaxIDLength           = 128   // agent ids, hook names, callback names
	MaxMetadataEntries    = 64    // metadata or labels entries
	MaxMetadataKeyLength  = 128   // bytes
	MaxMetadataValueBytes = 4096  // bytes
	MaxMetadataBytes      = 16384 // keys plus values
	MaxReasonLength       = 1024  // bytes, reasons and error messages
	MaxRecoveryActions    = 16
	MaxAgentIDsPerHook    = 1000
	MaxPageSize           = 1000
	DefaultPageSize       = 100
	MaxTimeout            = 5 * time.Minute // timeout_ms of transitions and hooks

	DefaultTransitionTimeout = 30 * time.Second
	DefaultHookTimeout       = 30 * time.Second // the specification SDKs' default
)

func invalid(format string, args ...any) *Error {
	return Errorf(CodeInvalidArgument, format, args...)
}

// checkID validates an agent id or a name: 1–128 characters of [A-Za-z0-9._:-] starting
// with a letter or a digit.
func checkID(field, id string) error {
	if id == "" {
		return invalid("%s is empty", field)
	}
	if len(id) > MaxIDLength {
		return invalid("%s is %d bytes long, at most %d allowed", field, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != ':' && c != '-') {
			return invalid("%s %q: only letters, digits and . _ : - are allowed, starting with a letter or digit", field, id)
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return invalid("%s is %d bytes long, at most %d allowed", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", field)
	}
	return nil
}

func checkMap(field string, m map[string]string) error {
	if len(m) > MaxMetadataEntries {
		return invalid("%s has %d entries, at most %d allowed", field, len(m), MaxMetadataEntries)
	}
	total := 0
	for k, v := range m {
		if k == "" {
			return invalid("%s has an empty key", field)
		}
		if err := checkText(field+" key", k, MaxMetadataKeyLength); err != nil {
			return err
		}
		if err := checkText(field+"["+k+"]", v, MaxMetadataValueBytes); err != nil {
			return err
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return invalid("%s holds %d bytes, at most %d allowed", field, total, MaxMetadataBytes)
	}
	return nil
}

func checkState(field string, s State, allowUnspecified bool) error {
	if s < StateUnspecified || s > StateRecovering || (s == StateUnspecified && !allowUnspecified) {
		return invalid("%s: %d is not a lifecycle state", field, int32(s))
	}
	return nil
}

func checkType(field string, t TransitionType) error {
	if t < TypeUnspecified || t > TypeMaintenance {
		return invalid("%s: %d is not a transition type", field, int32(t))
	}
	return nil
}

func checkTimeout(field string, d time.Duration) error {
	if d < 0 {
		return invalid("%s is negative", field)
	}
	if d > MaxTimeout {
		return invalid("%s is %v, at most %v allowed", field, d, MaxTimeout)
	}
	return nil
}

func checkPageSize(field string, n int) (int, error) {
	switch {
	case n < 0:
		return 0, invalid("%s is negative", field)
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return 0, invalid("%s is %d, at most %d allowed", field, n, MaxPageSize)
	}
	return n, nil
}

func checkErrorInfo(e *ErrorInfo) error {
	if e == nil {
		return nil
	}
	if err := checkText("error_info.message", e.Message, MaxReasonLength); err != nil {
		return err
	}
	if len(e.RecoveryActions) > MaxRecoveryActions {
		return invalid("error_info.recovery_actions has %d entries, at most %d allowed", len(e.RecoveryActions), MaxRecoveryActions)
	}
	for _, a := range e.RecoveryActions {
		if err := checkText("error_info.recovery_actions", a, MaxIDLength); err != nil {
			return err
		}
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// CheckID validates an id as the Manager does: 1–128 characters of [A-Za-z0-9._:-],
// starting with a letter or digit. The error names the field "id".
func CheckID(id string) error { return checkID("id", id) }
