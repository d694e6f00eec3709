package wire

import (
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

// encodeEvent returns the protobuf encoding of ev: the bytes deterministic
// proto.Marshal gives (fields in number order, map keys sorted, unknown fields last),
// written directly. Events are most of what a watch sends, and the reflective marshal of
// an event with metadata costs several times this. ok is false when a string is not valid
// UTF-8; the caller then marshals reflectively, for its error.
func encodeEvent(ev *pb.LifecycleEvent) (b []byte, ok bool, err error) {
	str := func(num protowire.Number, s string) bool {
		if s == "" {
			return true
		}
		if !utf8.ValidString(s) {
			return false
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, s)
		return true
	}
	varint := func(num protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	message := func(num protowire.Number, m proto.Message) error {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(deterministic.Size(m)))
		b, err = deterministic.MarshalAppend(b, m)
		return err
	}
	// One allocation: the sizes of the strings and map entries, plus room for tags,
	// lengths and numbers; the rare sub-messages grow it.
	var keyBuf [8]string
	keys := keyBuf[:0]
	n := 64 + len(ev.EventId) + len(ev.AgentId) + len(ev.InitiatedBy) + len(ev.Reason)
	for k, v := range ev.Metadata {
		keys = append(keys, k)
		n += 8 + len(k) + len(v)
	}
	slices.Sort(keys)
	b = make([]byte, 0, n)
	if !str(1, ev.EventId) || !str(2, ev.AgentId) {
		return nil, false, nil
	}
	varint(3, uint64(ev.PreviousState))
	varint(4, uint64(ev.NewState))
	varint(5, uint64(ev.TransitionType))
	if ts := ev.Timestamp; ts != nil {
		// google.protobuf.Timestamp: seconds = 1, nanos = 2; negative int32 values are
		// sign-extended to ten bytes, as protobuf does.
		n := 0
		if ts.Seconds != 0 {
			n += 1 + protowire.SizeVarint(uint64(ts.Seconds))
		}
		if ts.Nanos != 0 {
			n += 1 + protowire.SizeVarint(uint64(int64(ts.Nanos)))
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		varint(1, uint64(ts.Seconds))
		varint(2, uint64(int64(ts.Nanos)))
		if len(ts.ProtoReflect().GetUnknown()) > 0 {
			return nil, false, nil
		}
	}
	if !str(7, ev.InitiatedBy) || !str(8, ev.Reason) {
		return nil, false, nil
	}
	for _, k := range keys {
		v := ev.Metadata[k]
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, false, nil
		}
		// A map entry always carries its key and value, even empty ones.
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeBytes(len(v))))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	varint(10, ev.Sequence)
	if ev.ErrorInfo != nil {
		if err := message(11, ev.ErrorInfo); err != nil {
			return nil, false, err
		}
	}
	for _, h := range ev.HookOutcomes {
		if h == nil {
			return nil, false, nil
		}
		if err := message(12, h); err != nil {
			return nil, false, err
		}
	}
	if ev.Bookmark {
		varint(13, 1)
	}
	varint(14, uint64(ev.Revision))
	return append(b, ev.ProtoReflect().GetUnknown()...), true, nil
}
