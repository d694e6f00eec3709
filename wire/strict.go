package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
)

// Decoding is strict, as Kubernetes' strict field validation: an unknown field, an enum
// name or number that is no value of its enum, or a malformed timestamp is refused with
// lifecycle.CodeInvalidArgument naming the field, the value and what is accepted — never
// silently dropped or turned into the zero value. Enum names are taken in full
// (LIFECYCLE_STATE_ACTIVE) or without their enum's prefix (ACTIVE), as the specifications
// write them.

var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// invalid is a decoding error: the client's.
func invalid(format Format, err error) error {
	return &lifecycle.Error{Code: lifecycle.CodeInvalidArgument, Message: format.String() + ": " + err.Error()}
}

// unmarshalJSON decodes protojson strictly: one pass over the bytes against the message's
// descriptor (scanner) refuses unknown fields, unknown enum values and malformed
// timestamps and rewrites short enum names to full ones; protojson, without DiscardUnknown,
// decodes the result and checks everything else.
func unmarshalJSON(data []byte, m proto.Message) error {
	sc := scanner{data: data}
	if err := sc.scan(m.ProtoReflect().Descriptor()); err != nil {
		return invalid(JSON, err)
	}
	if sc.out != nil {
		data = append(sc.out, data[sc.copied:]...)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		return invalid(JSON, protojsonError(err))
	}
	return nil
}

// protojsonError drops protojson's "proto:" prefix (written with a space or, at random, a
// non-breaking one): the message says "json:" already.
func protojsonError(err error) error {
	s, ok := strings.CutPrefix(err.Error(), "proto:")
	if !ok {
		return err
	}
	return errors.New(strings.TrimLeft(s, " \u00a0"))
}

// maxJSONDepth bounds the scanner's recursion; no message of the API nests deeper.
const maxJSONDepth = 64

// errMalformed stops the scanner at input that is not JSON: protojson reports it.
var errMalformed = errors.New("malformed JSON")

// scanner walks JSON bytes beside a message descriptor. It copies nothing unless it
// rewrites an enum name: then out holds data[:copied] with the rewrites.
type scanner struct {
	data   []byte
	pos    int
	out    []byte
	copied int
}

func (s *scanner) scan(d protoreflect.MessageDescriptor) error {
	s.ws()
	err := s.message(d, "", 0)
	if err == errMalformed {
		return nil
	}
	return err
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// expect consumes c after white space.
func (s *scanner) expect(c byte) error {
	s.ws()
	if s.peek() != c {
		return errMalformed
	}
	s.pos++
	s.ws()
	return nil
}

// str consumes a string and returns its value and the span it took, quotes included.
func (s *scanner) str() (string, int, error) {
	start := s.pos
	if s.peek() != '"' {
		return "", 0, errMalformed
	}
	escaped := false
	for i := start + 1; i < len(s.data); i++ {
		switch s.data[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			s.pos = i + 1
			if !escaped {
				return string(s.data[start+1 : i]), start, nil
			}
			var v string
			if json.Unmarshal(s.data[start:s.pos], &v) != nil {
				return "", 0, errMalformed
			}
			return v, start, nil
		}
	}
	return "", 0, errMalformed
}

// literal consumes a number, true, false or null.
func (s *scanner) literal() string {
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return string(s.data[start:s.pos])
		}
		s.pos++
	}
	return string(s.data[start:s.pos])
}

// skip consumes any value.
func (s *scanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return errMalformed
	}
	switch s.peek() {
	case '"':
		_, _, err := s.str()
		return err
	case '{', '[':
		closing := byte('}')
		if s.peek() == '[' {
			closing = ']'
		}
		s.pos++
		s.ws()
		for s.peek() != closing {
			if closing == '}' {
				if _, _, err := s.str(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.peek() == ',' {
				s.pos++
				s.ws()
			} else if s.peek() != closing {
				return errMalformed
			}
		}
		s.pos++
		return nil
	case 0:
		return errMalformed
	}
	s.literal()
	return nil
}

// rewrite replaces data[start:s.pos] by text in the output.
func (s *scanner) rewrite(start int, text string) {
	if s.out == nil {
		s.out = make([]byte, 0, len(s.data)+64)
	}
	s.out = append(s.out, s.data[s.copied:start]...)
	s.out = append(s.out, text...)
	s.copied = s.pos
}

// message scans an object of message d at path.
func (s *scanner) message(d protoreflect.MessageDescriptor, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%s: nested more than %d levels deep", fieldPath(path), maxJSONDepth)
	}
	if s.peek() != '{' {
		return s.skip(depth) // not an object: protojson says what it should be
	}
	s.pos++
	s.ws()
	fields := d.Fields()
	for s.peek() != '}' {
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		if fd == nil {
			return pbcbor.UnknownFieldError(d, path, key)
		}
		fpath := key
		if path != "" {
			fpath = path + "." + key
		}
		switch {
		case fd.IsList() && s.peek() == '[':
			s.pos++
			s.ws()
			for i := 0; s.peek() != ']'; i++ {
				if err := s.item(fd, fpath+"["+strconv.Itoa(i)+"]", depth); err != nil {
					return err
				}
				if err := s.next(']'); err != nil {
					return err
				}
			}
			s.pos++
		case fd.IsMap() && s.peek() == '{':
			s.pos++
			s.ws()
			for s.peek() != '}' {
				k, _, err := s.str()
				if err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
				if err := s.item(fd.MapValue(), fpath+"["+k+"]", depth); err != nil {
					return err
				}
				if err := s.next('}'); err != nil {
					return err
				}
			}
			s.pos++
		case fd.IsList() || fd.IsMap():
			if err := s.skip(depth); err != nil {
				return err
			}
		default:
			if err := s.item(fd, fpath, depth); err != nil {
				return err
			}
		}
		if err := s.next('}'); err != nil {
			return err
		}
	}
	s.pos++
	return nil
}

// next consumes a comma, or stops before closing.
func (s *scanner) next(closing byte) error {
	s.ws()
	switch s.peek() {
	case ',':
		s.pos++
		s.ws()
		return nil
	case closing:
		return nil
	}
	return errMalformed
}

// item scans one value of field fd (an element, for lists and maps).
func (s *scanner) item(fd protoreflect.FieldDescriptor, path string, depth int) error {
	if c := s.peek(); c == '{' || c == '[' {
		if k := fd.Kind(); k != protoreflect.MessageKind && k != protoreflect.GroupKind {
			return s.skip(depth) // the wrong type: protojson says so
		}
	}
	switch fd.Kind() {
	case protoreflect.EnumKind:
		e := fd.Enum()
		if e.FullName() == "google.protobuf.NullValue" {
			return s.skip(depth)
		}
		if s.peek() != '"' {
			lit := s.literal()
			if n, err := strconv.ParseInt(lit, 10, 32); err == nil && e.Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
				return pbcbor.EnumError(e, path, lit)
			}
			return nil // null, a known number, or a type protojson refuses
		}
		name, start, err := s.str()
		if err != nil {
			return err
		}
		ev := pbcbor.EnumValueByName(e, name)
		if ev == nil {
			return pbcbor.EnumError(e, path, strconv.Quote(name))
		}
		if string(ev.Name()) != name {
			s.rewrite(start, `"`+string(ev.Name())+`"`)
		}
		return nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		d := fd.Message()
		switch {
		case d.FullName() == timestampName:
			if c := s.peek(); c == '{' || c == '[' {
				return fmt.Errorf("%s: an object or array is not a timestamp; use an RFC 3339 string, such as \"2025-01-02T15:04:05Z\"", path)
			}
			if s.peek() != '"' {
				if lit := s.literal(); lit != "null" {
					return fmt.Errorf("%s: %s is not a timestamp; use an RFC 3339 string, such as \"2025-01-02T15:04:05Z\"", path, lit)
				}
				return nil
			}
			v, _, err := s.str()
			if err != nil {
				return err
			}
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%s: %q is not a timestamp; use RFC 3339, such as \"2025-01-02T15:04:05Z\"", path, v)
			}
			return nil
		case strings.HasPrefix(string(d.FullName()), "google.protobuf."):
			return s.skip(depth) // other well-known types have their own JSON forms: protojson checks them
		}
		return s.message(d, path, depth+1)
	}
	return s.skip(depth)
}

// checkMessage refuses what a decoded message may hold that its encoding does not: enum
// numbers that name no value, and timestamps out of range. Paths are built only for an
// error (checkError), so that the common case allocates nothing.
func checkMessage(m protoreflect.Message, path string) error {
	if err := check(m); err != nil {
		if path != "" {
			err.path = path + "." + err.path
		}
		return err
	}
	return nil
}

// checkError is a failed check; path grows as check unwinds.
type checkError struct {
	path string
	err  func(path string) error
}

func (e *checkError) Error() string { return e.err(e.path).Error() }

func (e *checkError) within(prefix string) *checkError {
	if e.path == "" || strings.HasPrefix(e.path, "[") {
		e.path = prefix + e.path
	} else {
		e.path = prefix + "." + e.path
	}
	return e
}

func check(m protoreflect.Message) *checkError {
	// A loop over the descriptor rather than m.Range: no closure to allocate per message.
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		if k := vd.Kind(); k != protoreflect.EnumKind && k != protoreflect.MessageKind && k != protoreflect.GroupKind || !m.Has(fd) {
			continue
		}
		var bad *checkError
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && bad == nil; i++ {
				if bad = checkValue(fd, l.Get(i)); bad != nil {
					bad = bad.within("[" + strconv.Itoa(i) + "]")
				}
			}
		case fd.IsMap():
			bad = checkMap(vd, v.Map())
		default:
			bad = checkValue(fd, v)
		}
		if bad != nil {
			return bad.within(fd.JSONName())
		}
	}
	return nil
}

// checkMap checks the values of a map; apart, so that only maps pay for the closure.
func checkMap(vd protoreflect.FieldDescriptor, m protoreflect.Map) (bad *checkError) {
	m.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
		if bad = checkValue(vd, mv); bad != nil {
			bad = bad.within("[" + k.String() + "]")
		}
		return bad == nil
	})
	return bad
}

// checkValue checks one value of field fd; its error's path is relative to the value.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) *checkError {
	if fd.Kind() == protoreflect.EnumKind {
		if e := fd.Enum(); e.Values().ByNumber(v.Enum()) == nil && e.FullName() != "google.protobuf.NullValue" {
			n := v.Enum()
			return &checkError{err: func(path string) error { return pbcbor.EnumError(e, path, strconv.Itoa(int(n))) }}
		}
		return nil
	}
	msg := v.Message()
	if msg.Descriptor().FullName() == timestampName {
		if ts, ok := msg.Interface().(*timestamppb.Timestamp); ok {
			if err := ts.CheckValid(); err != nil {
				return &checkError{err: func(path string) error {
					return fmt.Errorf("%s: not a valid timestamp (seconds %d, nanos %d): %w", path, ts.GetSeconds(), ts.GetNanos(), err)
				}}
			}
		}
		return nil
	}
	return check(msg)
}

func fieldPath(path string) string {
	if path == "" {
		return "message"
	}
	return path
}
