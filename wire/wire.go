// Package wire encodes and decodes the protobuf messages of both services in the three
// formats every transport offers — protobuf binary, JSON (protojson) and CBOR — so that the
// server, the Go client and the C library decode a request the same way.
package wire

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	pb "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
)

// Format is a message encoding. The numbers are part of the C ABI (hms_lifecycle.h).
type Format int

// The formats.
const (
	Protobuf Format = 0
	JSON     Format = 1
	CBOR     Format = 2
)

func (f Format) String() string {
	switch f {
	case Protobuf:
		return "protobuf"
	case JSON:
		return "json"
	case CBOR:
		return "cbor"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// Valid reports whether f is one of the formats.
func (f Format) Valid() bool { return f >= Protobuf && f <= CBOR }

// deterministic sorts map entries, so that a message always encodes to the same bytes
// (the shared test vectors compare them across languages).
var deterministic = proto.MarshalOptions{Deterministic: true}

// Marshal encodes m in format f.
func Marshal(f Format, m proto.Message) ([]byte, error) {
	switch f {
	case Protobuf:
		if ev, ok := m.(*pb.LifecycleEvent); ok {
			if b, ok, err := encodeEvent(ev); ok || err != nil {
				return b, err
			}
		}
		return deterministic.Marshal(m)
	case JSON:
		return protojson.Marshal(m)
	case CBOR:
		return pbcbor.Marshal(m)
	}
	return nil, fmt.Errorf("unknown format %d: use 0 (protobuf), 1 (json) or 2 (cbor)", int(f))
}

// Unmarshal decodes data in format f into m, strictly (strict.go). A decoding error is a
// *lifecycle.Error with CodeInvalidArgument whose message names the format, the field, the
// value given and, for enums and unknown fields, the accepted ones.
func Unmarshal(f Format, data []byte, m proto.Message) error {
	switch f {
	case Protobuf:
		// Unknown fields are kept, as protobuf does for compatibility; enum numbers are
		// the only form of an enum here, so one that names no value is refused.
		if err := proto.Unmarshal(data, m); err != nil {
			return invalid(f, err)
		}
		if err := checkMessage(m.ProtoReflect(), ""); err != nil {
			return invalid(f, err)
		}
		return nil
	case JSON:
		return unmarshalJSON(data, m)
	case CBOR:
		if err := pbcbor.Unmarshal(data, m); err != nil {
			return invalid(f, errors.New(strings.TrimPrefix(err.Error(), "cbor: ")))
		}
		return nil
	}
	return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "unknown format %d: use 0 (protobuf), 1 (json) or 2 (cbor)", int(f))
}
