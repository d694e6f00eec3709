// Package pbcbor encodes protobuf messages as CBOR (RFC 8949) — the same data model as the
// protobuf JSON mapping, in binary — by walking protoreflect, not by re-encoding JSON:
//
//   - a message is a map keyed by the protojson field names (lowerCamelCase); fields with
//     their default value are left out, as protojson does;
//   - 64-bit integers are CBOR integers (not strings as in JSON); bytes are byte strings;
//   - enums are their value names; decoding also takes the names without the enum's prefix
//     (ACTIVE for LIFECYCLE_STATE_ACTIVE), and refuses a name or number that is no value;
//   - google.protobuf.Timestamp is tag 0 (an RFC 3339 string, nanoseconds kept); decoding
//     also takes tag 1 (epoch seconds);
//   - encoding is core deterministic (RFC 8949 §4.2.1): shortest forms, map keys sorted.
//
// Decoding rejects duplicate map keys, indefinite lengths, unknown fields, unknown enum
// values, wrong types and out-of-range numbers, and bounds nesting, element counts and size
// (see the limits below). Its errors name the field by its path ("spec.triggerStates[1]").
package pbcbor

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits on decoded input.
const (
	MaxSize     = 4 << 20 // bytes of one message
	MaxDepth    = 32      // nested maps, arrays and tags
	MaxElements = 65536   // items of one array or pairs of one map
)

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	opts := cbor.CoreDetEncOptions()
	opts.Time = cbor.TimeRFC3339Nano
	opts.TimeTag = cbor.EncTagRequired
	em, err := opts.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  MaxDepth,
		MaxArrayElements: MaxElements,
		MaxMapPairs:      MaxElements,
		IntDec:           cbor.IntDecConvertNone,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// Marshal encodes m.
func Marshal(m proto.Message) ([]byte, error) {
	b, err := encMode.Marshal(messageValue(m.ProtoReflect()))
	if err != nil {
		return nil, fmt.Errorf("cbor: encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return b, nil
}

func messageValue(m protoreflect.Message) any {
	if m.Descriptor().FullName() == timestampName {
		ts := m.Interface().(*timestamppb.Timestamp)
		return ts.AsTime().UTC()
	}
	out := make(map[string]any, m.Descriptor().Fields().Len())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			items := make([]any, l.Len())
			for i := range items {
				items[i] = scalarValue(fd, l.Get(i))
			}
			out[fd.JSONName()] = items
		case fd.IsMap():
			mm := make(map[any]any, v.Map().Len())
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mm[k.Interface()] = scalarValue(fd.MapValue(), mv)
				return true
			})
			out[fd.JSONName()] = mm
		default:
			out[fd.JSONName()] = scalarValue(fd, v)
		}
		return true
	})
	return out
}

func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int64(v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageValue(v.Message())
	case protoreflect.FloatKind:
		return float32(v.Float())
	}
	return v.Interface() // bool, int32/64, uint32/64, double, string, []byte
}

// Unmarshal decodes data into m, which it resets first.
func Unmarshal(data []byte, m proto.Message) error {
	name := m.ProtoReflect().Descriptor().FullName()
	if len(data) > MaxSize {
		return fmt.Errorf("cbor: %s: %d bytes, at most %d allowed", name, len(data), MaxSize)
	}
	var v any
	if err := decMode.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("cbor: %s: %w", name, err)
	}
	proto.Reset(m)
	if err := setMessage(m.ProtoReflect(), v, ""); err != nil {
		return fmt.Errorf("cbor: %w", err)
	}
	return nil
}

func setMessage(m protoreflect.Message, v any, path string) error {
	desc := m.Descriptor()
	if desc.FullName() == timestampName {
		t, err := timeValue(v, path)
		if err != nil {
			return err
		}
		ts := timestamppb.New(t)
		if err := ts.CheckValid(); err != nil {
			return fmt.Errorf("%s: %w", pathName(path), err)
		}
		proto.Merge(m.Interface(), ts)
		return nil
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want a map with text keys for %s, got %s", pathName(path), desc.FullName(), typeName(v))
	}
	for key, fv := range fields {
		if fv == nil {
			continue // null means the default, as in protojson
		}
		fd := desc.Fields().ByJSONName(key)
		if fd == nil {
			fd = desc.Fields().ByName(protoreflect.Name(key))
		}
		if fd == nil {
			return UnknownFieldError(desc, path, key)
		}
		fpath := key
		if path != "" {
			fpath = path + "." + key
		}
		switch {
		case fd.IsList():
			items, ok := fv.([]any)
			if !ok {
				return fmt.Errorf("%s: want an array, got %s", fpath, typeName(fv))
			}
			l := m.Mutable(fd).List()
			for i, item := range items {
				pv, err := fieldValue(m, fd, l.NewElement, item, fmt.Sprintf("%s[%d]", fpath, i))
				if err != nil {
					return err
				}
				l.Append(pv)
			}
		case fd.IsMap():
			entries, ok := fv.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: want a map with text keys, got %s", fpath, typeName(fv))
			}
			if fd.MapKey().Kind() != protoreflect.StringKind {
				return fmt.Errorf("%s: maps with %s keys are not supported", fpath, fd.MapKey().Kind())
			}
			mm := m.Mutable(fd).Map()
			for k, ev := range entries {
				pv, err := fieldValue(m, fd.MapValue(), mm.NewValue, ev, fpath+"["+k+"]")
				if err != nil {
					return err
				}
				mm.Set(protoreflect.ValueOfString(k).MapKey(), pv)
			}
		default:
			pv, err := fieldValue(m, fd, func() protoreflect.Value { return m.NewField(fd) }, fv, fpath)
			if err != nil {
				return err
			}
			m.Set(fd, pv)
		}
	}
	return nil
}

// fieldValue converts one decoded item to the field's kind, checking type and range.
func fieldValue(parent protoreflect.Message, fd protoreflect.FieldDescriptor, newValue func() protoreflect.Value, v any, path string) (protoreflect.Value, error) {
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("%s: want %s, got %s", path, fd.Kind(), typeName(v))
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
		return bad()
	case protoreflect.StringKind:
		if s, ok := v.(string); ok {
			return protoreflect.ValueOfString(s), nil
		}
		return bad()
	case protoreflect.BytesKind:
		if b, ok := v.([]byte); ok {
			return protoreflect.ValueOfBytes(b), nil
		}
		return bad()
	case protoreflect.EnumKind:
		switch x := v.(type) {
		case string:
			if ev := EnumValueByName(fd.Enum(), x); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
			return protoreflect.Value{}, EnumError(fd.Enum(), path, strconv.Quote(x))
		default:
			n, err := integer(v, math.MinInt32, math.MaxInt32, path)
			if err != nil {
				return bad()
			}
			if fd.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
				return protoreflect.Value{}, EnumError(fd.Enum(), path, strconv.FormatInt(n, 10))
			}
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := integer(v, math.MinInt32, math.MaxInt32, path)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := integer(v, math.MinInt64, math.MaxInt64, path)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := unsigned(v, math.MaxUint32, path)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := unsigned(v, math.MaxUint64, path)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		switch x := v.(type) {
		case float64:
			if fd.Kind() == protoreflect.FloatKind {
				return protoreflect.ValueOfFloat32(float32(x)), nil
			}
			return protoreflect.ValueOfFloat64(x), nil
		case float32:
			if fd.Kind() == protoreflect.FloatKind {
				return protoreflect.ValueOfFloat32(x), nil
			}
			return protoreflect.ValueOfFloat64(float64(x)), nil
		}
		return bad()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		pv := newValue()
		if err := setMessage(pv.Message(), v, path); err != nil {
			return protoreflect.Value{}, err
		}
		return pv, nil
	}
	return bad()
}

func integer(v any, lo, hi int64, path string) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x >= lo && x <= hi {
			return x, nil
		}
	case uint64:
		if x <= uint64(hi) && int64(x) >= lo {
			return int64(x), nil
		}
	default:
		return 0, fmt.Errorf("%s: want an integer, got %s", path, typeName(v))
	}
	return 0, fmt.Errorf("%s: %v is out of range [%d, %d]", path, v, lo, hi)
}

func unsigned(v any, hi uint64, path string) (uint64, error) {
	switch x := v.(type) {
	case uint64:
		if x <= hi {
			return x, nil
		}
	case int64:
		if x >= 0 && uint64(x) <= hi {
			return uint64(x), nil
		}
	default:
		return 0, fmt.Errorf("%s: want an unsigned integer, got %s", path, typeName(v))
	}
	return 0, fmt.Errorf("%s: %v is out of range [0, %d]", path, v, hi)
}

func timeValue(v any, path string) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case cbor.Tag:
		return time.Time{}, fmt.Errorf("%s: tag %d is not a timestamp: use tag 0 or 1", path, x.Number)
	}
	return time.Time{}, fmt.Errorf("%s: want a timestamp (tag 0 or 1), got %s", path, typeName(v))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float32, float64:
		return "a float"
	case string:
		return "a text string"
	case []byte:
		return "a byte string"
	case []any:
		return "an array"
	case map[string]any, map[any]any:
		return "a map"
	case time.Time:
		return "a timestamp"
	case cbor.Tag:
		return "a tag"
	}
	return fmt.Sprintf("%T", v)
}

// EnumValueByName returns the value of e named name, in full (LIFECYCLE_STATE_ACTIVE) or
// without the prefix buf's style gives every value of an enum (ACTIVE): the specifications
// and the language bindings show the short names, so users write them. Nil if none.
func EnumValueByName(e protoreflect.EnumDescriptor, name string) protoreflect.EnumValueDescriptor {
	values := e.Values()
	if ev := values.ByName(protoreflect.Name(name)); ev != nil {
		return ev
	}
	if name == "" {
		return nil
	}
	return values.ByName(protoreflect.Name(enumPrefix(e) + name))
}

// enumPrefix is the prefix of e's value names in buf's style: the enum's name in upper
// snake case and "_" (LifecycleState → LIFECYCLE_STATE_).
func enumPrefix(e protoreflect.EnumDescriptor) string {
	name := string(e.Name())
	b := make([]byte, 0, len(name)+4)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' && i > 0 {
			b = append(b, '_')
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(append(b, '_'))
}

// EnumError is the error for value (quoted if a name) given for field path, an enum e
// has no value of: it lists the accepted names.
func EnumError(e protoreflect.EnumDescriptor, path, value string) error {
	prefix := enumPrefix(e)
	values := e.Values()
	names := make([]string, values.Len())
	for i := range names {
		names[i] = strings.TrimPrefix(string(values.Get(i).Name()), prefix)
	}
	return fmt.Errorf("%s: %s is not a %s; accepted: %s (or with the prefix %s, or their numbers)",
		pathName(path), value, e.Name(), strings.Join(names, ", "), prefix)
}

// UnknownFieldError is the error for a field key that message d (at path) does not have:
// it lists the fields.
func UnknownFieldError(d protoreflect.MessageDescriptor, path, key string) error {
	fields := d.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = fields.Get(i).JSONName()
	}
	where := string(d.Name())
	if path != "" {
		where = path + " (" + where + ")"
	}
	return fmt.Errorf("unknown field %q in %s; accepted: %s", key, where, strings.Join(names, ", "))
}

// pathName names the top-level message for an empty path.
func pathName(path string) string {
	if path == "" {
		return "message"
	}
	return path
}

// Codec is the CBOR codec for connect-go: content types application/cbor,
// application/connect+cbor, application/grpc+cbor and application/grpc-web+cbor.
type Codec struct{}

// Name implements connect.Codec.
func (Codec) Name() string { return "cbor" }

// Marshal implements connect.Codec.
func (Codec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errors.New("cbor: not a protobuf message")
	}
	return Marshal(m)
}

// Unmarshal implements connect.Codec.
func (Codec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return errors.New("cbor: not a protobuf message")
	}
	return Unmarshal(data, m)
}
