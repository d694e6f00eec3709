package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
)

// The cases: a misspelt enum name, an unknown field or a malformed timestamp is
// refused with INVALID_ARGUMENT naming the field, the value and what is accepted — in
// JSON and CBOR alike — instead of being dropped or turned into the zero value.
func TestStrictDecoding(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
		json string
		want []string // in the error message
	}{
		{"misspelt expected state", &v1.TransitionRequest{},
			`{"agentId":"x1","targetState":"LIFECYCLE_STATE_ACTIVE","expectedState":"LIFECYCLE_STATE_TERMINATD"}`,
			[]string{`expectedState: "LIFECYCLE_STATE_TERMINATD" is not a LifecycleState`, "accepted:", "TERMINATED", "LIFECYCLE_STATE_"}},
		{"misspelt short name", &v1.TransitionRequest{}, `{"agent_id":"x1","target_state":"ACTIV"}`,
			[]string{`target_state: "ACTIV" is not a LifecycleState`}},
		{"list agents states filter", &v1.ListAgentsRequest{}, `{"states":["ACTIVE","PAUSD"]}`,
			[]string{`states[1]: "PAUSD" is not a LifecycleState`}},
		{"watch states filter", &v1.WatchEventsRequest{}, `{"states":["LIFECYCLE_STATE_EROR"]}`,
			[]string{`states[0]: "LIFECYCLE_STATE_EROR"`}},
		{"history transition type", &v1.GetHistoryRequest{}, `{"transitionType":"FORCE"}`,
			[]string{`transitionType: "FORCE" is not a TransitionType`, "FORCED", "TRANSITION_TYPE_"}},
		{"hook trigger states", &v1.RegisterHookRequest{}, `{"hookName":"h","triggerStates":["ERROR","TERMINATD"]}`,
			[]string{`triggerStates[1]: "TERMINATD"`}},
		{"plugin states", &pluginv1.ListPluginsRequest{}, `{"states":["ACTIVATED"]}`,
			[]string{`states[0]: "ACTIVATED" is not a PluginState`, "ACTIVATING"}},
		{"unknown enum number", &v1.TransitionRequest{}, `{"agentId":"x1","targetState":42}`,
			[]string{"targetState: 42 is not a LifecycleState"}},
		{"unknown field", &v1.TransitionRequest{}, `{"agentId":"x1","targetStat":"ACTIVE"}`,
			[]string{`unknown field "targetStat" in TransitionRequest`, "targetState"}},
		{"unknown nested field", &v1.TransitionRequest{}, `{"agentId":"x1","errorInfo":{"mesage":"m"}}`,
			[]string{`unknown field "mesage" in errorInfo (ErrorInfo)`}},
		{"malformed timestamp", &v1.GetHistoryRequest{}, `{"startTime":"yesterday"}`,
			[]string{`startTime: "yesterday" is not a timestamp`, "RFC 3339"}},
		{"timestamp of the wrong type", &v1.GetHistoryRequest{}, `{"endTime":17}`,
			[]string{"endTime: 17 is not a timestamp"}},
		{"duplicate field beside a short name", &v1.TransitionRequest{}, `{"targetState":"ACTIVE","targetState":"PAUSED"}`,
			[]string{`duplicate field "targetState"`}},
		{"wrong type", &v1.TransitionRequest{}, `{"agentId":5}`, []string{"agentId"}},
		{"malformed", &v1.TransitionRequest{}, `{"agentId":`, []string{"json:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkInvalid(t, Unmarshal(JSON, []byte(tt.json), tt.msg), tt.want)
			if tt.name == "malformed" || tt.name == "wrong type" || strings.HasPrefix(tt.name, "duplicate") {
				return // JSON syntax; CBOR's own cases are in pbcbor
			}
			// The same request in CBOR.
			b := mustCBORFromJSON(t, tt.json)
			proto.Reset(tt.msg)
			err := Unmarshal(CBOR, b, tt.msg)
			if strings.Contains(tt.name, "timestamp") { // CBOR timestamps are tags, not strings
				checkInvalid(t, err, []string{strings.SplitN(tt.want[0], ":", 2)[0] + ": want a timestamp"})
				return
			}
			checkInvalid(t, err, tt.want[:1])
		})
	}
}

// mustCBORFromJSON re-encodes a JSON request as CBOR (numbers as integers).
func mustCBORFromJSON(t *testing.T, js string) []byte {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	b, err := cbor.Marshal(toCBOR(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func toCBOR(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = toCBOR(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toCBOR(e)
		}
		return out
	case interface{ Int64() (int64, error) }:
		n, _ := x.Int64()
		return n
	}
	return v
}

func checkInvalid(t *testing.T, err error, want []string) {
	t.Helper()
	var le *lifecycle.Error
	if !errors.As(err, &le) || le.Code != lifecycle.CodeInvalidArgument {
		t.Fatalf("error %v (%T), want a *lifecycle.Error with CodeInvalidArgument", err, err)
	}
	for _, w := range want {
		if !strings.Contains(le.Message, w) {
			t.Errorf("error %q does not mention %q", le.Message, w)
		}
	}
}

// The specification's short enum names decode like the full ones, in JSON and CBOR, with
// the proto field names or the camelCase ones; numbers that name a value still decode.
func TestShortEnumNames(t *testing.T) {
	for _, js := range []string{
		`{"agent_id":"x1","target_state":"ACTIVE","expected_state":"INITIALIZED","timeout_ms":5}`,
		`{"agentId":"x1","targetState":"LIFECYCLE_STATE_ACTIVE","expectedState":"INITIALIZED","timeoutMs":5}`,
		`{"agentId":"x1","targetState":2,"expectedState":"LIFECYCLE_STATE_INITIALIZED","timeoutMs":"5"}`,
	} {
		for _, f := range []Format{JSON, CBOR} {
			data := []byte(js)
			if f == CBOR {
				if strings.Contains(js, `"5"`) {
					continue // a string for an integer is JSON's form only
				}
				data = mustCBORFromJSON(t, js)
			}
			var m v1.TransitionRequest
			if err := Unmarshal(f, data, &m); err != nil {
				t.Fatalf("%s %s: %v", f, js, err)
			}
			want := &v1.TransitionRequest{AgentId: "x1", TargetState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE,
				ExpectedState: v1.LifecycleState_LIFECYCLE_STATE_INITIALIZED, TimeoutMs: 5}
			if !proto.Equal(&m, want) {
				t.Errorf("%s %s decoded to %v", f, js, &m)
			}
		}
	}
	// Lists, nested messages and 64-bit integers survive the rewriting.
	var w v1.WatchEventsRequest
	if err := Unmarshal(JSON, []byte(`{"states":["ERROR","LIFECYCLE_STATE_PAUSED"],"transitionTypes":["ERROR_TRIGGERED"],"fromSequence":"18446744073709551615"}`), &w); err != nil {
		t.Fatal(err)
	}
	if w.GetFromSequence() != 1<<64-1 || len(w.GetStates()) != 2 || w.GetStates()[0] != v1.LifecycleState_LIFECYCLE_STATE_ERROR ||
		w.GetTransitionTypes()[0] != v1.TransitionType_TRANSITION_TYPE_ERROR_TRIGGERED {
		t.Errorf("decoded %v", &w)
	}
	var h v1.HookWorkerMessage
	if err := Unmarshal(JSON, []byte(`{"reply":{"invocationId":"i","veto":true}}`), &h); err != nil || !h.GetReply().GetVeto() {
		t.Errorf("oneof: %v, %v", &h, err)
	}
}

// Protobuf keeps unknown fields (compatibility) but refuses enum numbers that name no
// value and timestamps out of range, naming the field.
func TestProtobuf(t *testing.T) {
	b, _ := proto.Marshal(&v1.WatchEventsRequest{States: []v1.LifecycleState{2, 77}})
	checkInvalid(t, Unmarshal(Protobuf, b, &v1.WatchEventsRequest{}), []string{"protobuf: states[1]: 77 is not a LifecycleState"})
	b, _ = proto.Marshal(&v1.GetHistoryRequest{StartTime: &timestamp{Seconds: 1, Nanos: 2e9}})
	checkInvalid(t, Unmarshal(Protobuf, b, &v1.GetHistoryRequest{}), []string{"startTime: not a valid timestamp"})
	checkInvalid(t, Unmarshal(Protobuf, []byte{0xff}, &v1.GetHistoryRequest{}), []string{"protobuf:"})
	checkInvalid(t, Unmarshal(Format(9), nil, &v1.GetHistoryRequest{}), []string{"unknown format 9"})
	good := &v1.TransitionRequest{AgentId: "a", TargetState: 2}
	b, _ = proto.Marshal(good)
	var m v1.TransitionRequest
	if err := Unmarshal(Protobuf, b, &m); err != nil || !proto.Equal(&m, good) {
		t.Errorf("%v, %v", &m, err)
	}
}

// What Marshal writes, Unmarshal reads, in every format.
func TestRoundTrip(t *testing.T) {
	ev := &v1.LifecycleEvent{AgentId: "a", NewState: 2, TransitionType: 3, Timestamp: &timestamp{Seconds: 1700000000, Nanos: 5},
		Sequence: 1 << 60, HookOutcomes: []*v1.HookOutcome{{HookName: "h", Result: 2}}}
	for _, f := range []Format{Protobuf, JSON, CBOR} {
		b, err := Marshal(f, ev)
		if err != nil {
			t.Fatal(err)
		}
		var back v1.LifecycleEvent
		if err := Unmarshal(f, b, &back); err != nil || !proto.Equal(&back, ev) {
			t.Errorf("%s: %v, %v", f, &back, err)
		}
	}
}

// BenchmarkUnmarshalJSON compares the strict decoder with plain protojson, on a request
// with full enum names (the common case) and with short ones (the rewriting path).
//
//	go test -run NONE -bench UnmarshalJSON -benchmem ./wire
func BenchmarkUnmarshalJSON(b *testing.B) {
	full := []byte(`{"agentId":"agent-001","targetState":"LIFECYCLE_STATE_ACTIVE","reason":"Starting agent for task processing","expectedState":"LIFECYCLE_STATE_INITIALIZED","timeoutMs":5000}`)
	short := []byte(`{"agent_id":"agent-001","target_state":"ACTIVE","reason":"Starting agent for task processing","expected_state":"INITIALIZED","timeout_ms":5000}`)
	b.Run("protojson", func(b *testing.B) {
		for b.Loop() {
			var m v1.TransitionRequest
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(full, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		data []byte
	}{{"strict-full-names", full}, {"strict-short-names", short}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var m v1.TransitionRequest
				if err := Unmarshal(JSON, c.data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type timestamp = timestamppb.Timestamp

// FuzzUnmarshalJSON: arbitrary bytes never panic; what protojson decodes the strict
// decoder decodes to the same message, or refuses; what it decodes re-encodes to bytes
// that decode the same.
// Run longer with: go test -fuzz FuzzUnmarshalJSON ./wire
func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(`{"agent_id":"x1","target_state":"ACTIVE","errorInfo":{"timestamp":"2025-01-02T15:04:05Z","recoveryActions":["a"]},"metadata":{"k":"v"}}`))
	f.Add([]byte(`{"agentId":"x\"1","targetState":2,"expectedState":null,"force":true,"timeoutMs":"5"}`))
	f.Add([]byte(` { "targetState" : [ "ACTIVE" ] } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m v1.TransitionRequest
		err := Unmarshal(JSON, data, &m)
		var plain v1.TransitionRequest
		if protojson.Unmarshal(data, &plain) == nil && err == nil && !proto.Equal(&m, &plain) {
			t.Fatalf("decoded %v, protojson %v", &m, &plain)
		}
		if err != nil {
			return
		}
		b, err := protojson.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var again v1.TransitionRequest
		if err := Unmarshal(JSON, b, &again); err != nil || !proto.Equal(&m, &again) {
			t.Fatalf("re-encoded message does not decode the same: %v", err)
		}
	})
}

// BenchmarkUnmarshalProtobuf: the enum and timestamp check after proto.Unmarshal.
//
//	go test -run NONE -bench UnmarshalProtobuf -benchmem ./wire
func BenchmarkUnmarshalProtobuf(b *testing.B) {
	data, _ := proto.Marshal(&v1.TransitionRequest{AgentId: "agent-001", TargetState: 2, Reason: "Starting agent for task processing",
		ExpectedState: 1, TimeoutMs: 5000, ErrorInfo: &v1.ErrorInfo{Message: "m", Timestamp: &timestamp{Seconds: 1}}})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			var m v1.TransitionRequest
			if err := proto.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		for b.Loop() {
			var m v1.TransitionRequest
			if err := Unmarshal(Protobuf, data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
