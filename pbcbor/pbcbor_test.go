package pbcbor

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors from the current encoders")

var t0 = timestamppb.New(time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.UTC))

// samples are the messages pinned by the shared test vectors.
var samples = map[string]proto.Message{
	"transition_request": &v1.TransitionRequest{
		AgentId: "agent-001", TargetState: v1.LifecycleState_LIFECYCLE_STATE_ERROR, Force: true, Reason: "disk full",
		TimeoutMs: 5000, Metadata: map[string]string{"ticket": "CHG-42", "zone": "eu"},
		ExpectedState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE, ExpectedRevision: 1 << 40,
		ErrorInfo: &v1.ErrorInfo{Code: -3, Message: "no space", Timestamp: t0, IsRecoverable: true, RecoveryActions: []string{"RECOVERING"}},
	},
	"lifecycle_event": &v1.LifecycleEvent{
		EventId: "01a204d9-1034-7352-b362-2908ae20dd18", AgentId: "agent-001",
		PreviousState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE, NewState: v1.LifecycleState_LIFECYCLE_STATE_MAINTENANCE,
		TransitionType: v1.TransitionType_TRANSITION_TYPE_MAINTENANCE, Timestamp: t0, InitiatedBy: "operator:alice",
		Reason: "kernel upgrade", Metadata: map[string]string{"ticket": "CHG-42"}, Sequence: 18446744073709551615, Revision: 7,
		HookOutcomes: []*v1.HookOutcome{{HookId: "hook-1", HookName: "window", Result: v1.HookOutcome_RESULT_ALLOWED, LatencyUs: 1500, Enforced: true}},
	},
	"get_state_response": &v1.GetStateResponse{
		State: v1.LifecycleState_LIFECYCLE_STATE_ERROR, TimeInStateMs: 1500, PreviousState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE,
		IsTransitioning: true, LastTransition: t0, AgentId: "agent-001", Revision: 3, Labels: map[string]string{"pool": "blue"},
		ErrorInfo:         &v1.ErrorInfo{Code: 503, Message: "backend unreachable", Timestamp: t0, RecoveryActions: []string{"RECOVERING", "TERMINATED"}},
		AllowedNextStates: []v1.LifecycleState{v1.LifecycleState_LIFECYCLE_STATE_RECOVERING, v1.LifecycleState_LIFECYCLE_STATE_TERMINATED},
		LastSequence:      42,
	},
	"watch_events_request": &v1.WatchEventsRequest{
		AgentId: "agent-001", States: []v1.LifecycleState{v1.LifecycleState_LIFECYCLE_STATE_ERROR},
		TransitionTypes: []v1.TransitionType{v1.TransitionType_TRANSITION_TYPE_FORCED}, FromSequence: 1000, BookmarkIntervalMs: 250,
	},
	"register_hook_request": &v1.RegisterHookRequest{
		HookName: "audit", TriggerStates: []v1.LifecycleState{v1.LifecycleState_LIFECYCLE_STATE_TERMINATED}, IsBlocking: true,
		TimeoutMs: 3000, Config: map[string]string{"callback": "audit", "failure_policy": "ignore"}, AgentIds: []string{"a", "b"},
	},
}

// TestVectors pins the three encodings of every sample: protobuf binary (deterministic)
// and CBOR byte for byte, JSON by meaning (protojson does not promise stable bytes).
func TestVectors(t *testing.T) {
	dir := filepath.Join("..", "testdata", "vectors")
	for name, m := range samples {
		bin, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
		cb, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{name + ".binpb": bin, name + ".json": append(js, '\n'), name + ".cbor": cb}
		for file, got := range files {
			path := filepath.Join(dir, file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pbcbor -update to write the vectors)", err)
			}
			if strings.HasSuffix(file, ".json") {
				back := m.ProtoReflect().New().Interface()
				if err := protojson.Unmarshal(want, back); err != nil || !proto.Equal(back, m) {
					t.Errorf("%s does not decode to the sample: %v", file, err)
				}
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: encoding changed\n got %s\nwant %s", file, hex.EncodeToString(got), hex.EncodeToString(want))
			}
		}
		// Every vector decodes back to the sample.
		back := m.ProtoReflect().New().Interface()
		if err := Unmarshal(cb, back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(m, back, protocmp.Transform()); d != "" {
			t.Errorf("%s CBOR round trip (-want +got):\n%s", name, d)
		}
	}
}

func TestWireShape(t *testing.T) {
	b, _ := Marshal(&v1.LifecycleEvent{Sequence: 1 << 40, NewState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE, Timestamp: t0})
	var got map[string]any
	if err := cbor.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["sequence"] != uint64(1<<40) {
		t.Errorf("sequence is %T %v, want a CBOR integer", got["sequence"], got["sequence"])
	}
	if got["newState"] != "LIFECYCLE_STATE_ACTIVE" {
		t.Errorf("newState is %v, want the enum's name", got["newState"])
	}
	// Tag 0 (0xc0) with the RFC 3339 text.
	if !bytes.Contains(b, append([]byte{0xc0, 0x78, 30}, "2026-11-22T09:30:00.123456789Z"...)) {
		t.Errorf("timestamp is not tag 0 with nanoseconds: %x", b)
	}
	// Deterministic: map keys sorted by their encoding (shorter first).
	again, _ := Marshal(&v1.LifecycleEvent{Sequence: 1 << 40, NewState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE, Timestamp: t0})
	if !bytes.Equal(b, again) {
		t.Error("encoding is not deterministic")
	}
	// Tag 1 (epoch seconds) and enum numbers decode too.
	in, _ := cbor.Marshal(map[string]any{"timestamp": cbor.Tag{Number: 1, Content: int64(1700000000)}, "newState": 2})
	var ev v1.LifecycleEvent
	if err := Unmarshal(in, &ev); err != nil || ev.GetTimestamp().GetSeconds() != 1700000000 || ev.GetNewState() != v1.LifecycleState_LIFECYCLE_STATE_ACTIVE {
		t.Errorf("tag 1 and enum number: %v, %v", &ev, err)
	}
}

// The specification's short enum names (ACTIVE) decode like the full ones.
func TestShortEnumNames(t *testing.T) {
	in, _ := cbor.Marshal(map[string]any{"targetState": "ACTIVE", "expectedState": "LIFECYCLE_STATE_PAUSED"})
	var m v1.TransitionRequest
	if err := Unmarshal(in, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetTargetState() != v1.LifecycleState_LIFECYCLE_STATE_ACTIVE || m.GetExpectedState() != v1.LifecycleState_LIFECYCLE_STATE_PAUSED {
		t.Errorf("decoded %v", &m)
	}
	in, _ = cbor.Marshal(map[string]any{"triggerTransitions": []any{"ERROR_TRIGGERED", "TRANSITION_TYPE_FORCED"}})
	var h v1.RegisterHookRequest
	if err := Unmarshal(in, &h); err != nil {
		t.Fatal(err)
	}
	if got := h.GetTriggerTransitions(); len(got) != 2 || got[0] != v1.TransitionType_TRANSITION_TYPE_ERROR_TRIGGERED || got[1] != v1.TransitionType_TRANSITION_TYPE_FORCED {
		t.Errorf("decoded %v", got)
	}
}

func TestDecodingErrors(t *testing.T) {
	enc := func(v any) []byte { b, _ := cbor.Marshal(v); return b }
	deep := any("x")
	for range 40 {
		deep = []any{deep}
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"duplicate key", []byte{0xa2, 0x67, 'a', 'g', 'e', 'n', 't', 'I', 'd', 0x61, 'a', 0x67, 'a', 'g', 'e', 'n', 't', 'I', 'd', 0x61, 'b'}, "duplicate map key"},
		{"indefinite length", []byte{0xbf, 0x67, 'a', 'g', 'e', 'n', 't', 'I', 'd', 0x61, 'a', 0xff}, "indefinite-length"},
		{"unknown field", enc(map[string]any{"agentId": "a", "colour": "red"}), `unknown field "colour" in TransitionRequest; accepted: agentId, targetState`},
		{"wrong type", enc(map[string]any{"timeoutMs": "soon"}), "timeoutMs: want an integer, got a text string"},
		{"out of range", enc(map[string]any{"timeoutMs": int64(1) << 40}), "out of range"},
		{"bad enum", enc(map[string]any{"targetState": "LIFECYCLE_STATE_FLYING"}), `targetState: "LIFECYCLE_STATE_FLYING" is not a LifecycleState; accepted: UNSPECIFIED, INITIALIZED, ACTIVE`},
		{"short enum name misspelt", enc(map[string]any{"expectedState": "TERMINATD"}), `expectedState: "TERMINATD" is not a LifecycleState`},
		{"unknown enum number", enc(map[string]any{"targetState": 42}), `targetState: 42 is not a LifecycleState`},
		{"unknown nested field", enc(map[string]any{"errorInfo": map[string]any{"colour": 1}}), `unknown field "colour" in errorInfo (ErrorInfo)`},
		{"not a map", enc([]any{1, 2}), "want a map with text keys"},
		{"integer keys", enc(map[int]any{1: "a"}), "cbor"},
		{"too deep", enc(map[string]any{"metadata": deep}), "exceeded max nested level"},
		{"bad timestamp", enc(map[string]any{"errorInfo": map[string]any{"timestamp": "yesterday"}}), "errorInfo.timestamp: want a timestamp"},
		{"truncated", enc(map[string]any{"agentId": "agent-001"})[:5], "unexpected EOF"},
		{"too big", make([]byte, MaxSize+1), "at most 4194304 allowed"},
	}
	for _, tt := range tests {
		var m v1.TransitionRequest
		err := Unmarshal(tt.data, &m)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

// FuzzUnmarshal: arbitrary bytes never panic, and what decodes re-encodes to bytes that
// decode to the same message.
// Run longer with: go test -fuzz FuzzUnmarshal ./pbcbor
func FuzzUnmarshal(f *testing.F) {
	for _, m := range samples {
		b, _ := Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x61, 'x', 0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m v1.TransitionRequest
		if Unmarshal(data, &m) != nil {
			return
		}
		b, err := Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var again v1.TransitionRequest
		if err := Unmarshal(b, &again); err != nil || !proto.Equal(&m, &again) {
			t.Fatalf("re-encoded message does not decode the same: %v", err)
		}
	})
}

// FuzzUnmarshalJSON does the same for the JSON decoding path (protojson) the server uses.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, m := range samples {
		b, _ := protojson.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m v1.TransitionRequest
		if protojson.Unmarshal(data, &m) != nil {
			return
		}
		b, err := protojson.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var again v1.TransitionRequest
		if err := protojson.Unmarshal(b, &again); err != nil || !proto.Equal(&m, &again) {
			t.Fatalf("re-encoded message does not decode the same: %v", err)
		}
	})
}
