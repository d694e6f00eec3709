package wire

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

// randomEvent fills every field of an event, or leaves it empty, at random: zero values,
// empty map entries, negative times, sub-messages and unknown fields included.
func randomEvent(r *rand.Rand) *pb.LifecycleEvent {
	text := func() string {
		switch r.IntN(4) {
		case 0:
			return ""
		case 1:
			return "agent-é-中-\U0001F600"
		default:
			return fmt.Sprintf("s%d", r.Uint64()>>r.IntN(64))
		}
	}
	ev := &pb.LifecycleEvent{
		EventId: text(), AgentId: text(), InitiatedBy: text(), Reason: text(),
		PreviousState:  pb.LifecycleState(r.IntN(8)),
		NewState:       pb.LifecycleState(r.IntN(8)),
		TransitionType: pb.TransitionType(r.IntN(5)),
		Sequence:       r.Uint64() >> r.IntN(64),
		Revision:       int64(r.Uint64()>>r.IntN(64)) * int64(1-2*r.IntN(2)),
		Bookmark:       r.IntN(2) == 0,
	}
	if r.IntN(4) > 0 {
		ev.Timestamp = &timestamppb.Timestamp{Seconds: r.Int64N(1<<40) - 1<<39, Nanos: r.Int32N(2e9) - 1e9}
		if r.IntN(5) == 0 {
			ev.Timestamp.Seconds, ev.Timestamp.Nanos = 0, 0
		}
	}
	if n := r.IntN(5); n > 0 {
		ev.Metadata = map[string]string{}
		for range n {
			ev.Metadata[text()] = text()
		}
	}
	if r.IntN(3) == 0 {
		ev.ErrorInfo = &pb.ErrorInfo{Code: r.Int32N(100) - 50, Message: text(), IsRecoverable: r.IntN(2) == 0,
			RecoveryActions: []string{text(), text()}, Timestamp: timestamppb.Now()}
	}
	for range r.IntN(3) {
		ev.HookOutcomes = append(ev.HookOutcomes, &pb.HookOutcome{HookId: text(), HookName: text(),
			Result: pb.HookOutcome_Result(r.IntN(4)), Message: text(), LatencyUs: r.Int64N(math.MaxInt64), Enforced: r.IntN(2) == 0})
	}
	if r.IntN(6) == 0 {
		// A field from a newer peer, kept as unknown.
		ev.ProtoReflect().SetUnknown([]byte{0xf8, 0x01, 0x2a})
	}
	return ev
}

func TestEncodeEventIsDeterministicMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		ev := randomEvent(r)
		want, err := deterministic.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := encodeEvent(ev)
		if !ok || err != nil {
			t.Fatalf("event %d: ok %v, err %v", i, ok, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d encodes differently:\n got %x\nwant %x\nevent %v", i, got, want, ev)
		}
	}
}

func TestEncodeEventLeavesInvalidUTF8ToMarshal(t *testing.T) {
	for _, ev := range []*pb.LifecycleEvent{
		{AgentId: "a\xff"},
		{Reason: "ok", Metadata: map[string]string{"k": "\xc3"}},
		{Metadata: map[string]string{"\xc3": "v"}},
	} {
		if _, ok, err := encodeEvent(ev); ok || err != nil {
			t.Errorf("%v: ok %v, err %v; want a fallback", ev, ok, err)
		}
		_, err := Marshal(Protobuf, ev)
		if _, want := deterministic.Marshal(ev); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%v: Marshal error %v, want protobuf's %v", ev, err, want)
		}
	}
}

// FuzzEncodeEvent: any event protobuf decodes encodes to the bytes protobuf gives.
func FuzzEncodeEvent(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 16 {
		b, _ := deterministic.Marshal(randomEvent(r))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := new(pb.LifecycleEvent)
		if proto.Unmarshal(data, ev) != nil {
			return
		}
		want, wantErr := deterministic.Marshal(ev)
		got, err := Marshal(Protobuf, ev)
		if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("got %x, %v; want %x, %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkMarshalEvent: a watched event with a reason and three metadata entries,
// encoded directly and by protobuf's deterministic marshal.
func BenchmarkMarshalEvent(b *testing.B) {
	ev := &pb.LifecycleEvent{
		EventId: "019a4c1e-7f6b-7c1a-9d2e-3b4c5d6e7f80", AgentId: "agent-000123",
		PreviousState: pb.LifecycleState_LIFECYCLE_STATE_ACTIVE, NewState: pb.LifecycleState_LIFECYCLE_STATE_PAUSED,
		TransitionType: pb.TransitionType_TRANSITION_TYPE_NORMAL, Timestamp: timestamppb.Now(),
		InitiatedBy: "user:alice", Reason: "scheduled maintenance window",
		Metadata: map[string]string{"ticket": "OPS-1234", "region": "eu-west-1", "pool": "blue"},
		Sequence: 123456, Revision: 42,
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(Protobuf, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflective", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := deterministic.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
