package server

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
)

// byteConn is a net.Conn that reads data in pieces of at most step bytes.
type byteConn struct {
	net.Conn
	data []byte
	step int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func frame(typ http2.FrameType, flags http2.Flags, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), byte(typ), byte(flags), 0, 0, 0, 0}, payload...)
}

func TestAckFilter(t *testing.T) {
	settings := frame(http2.FrameSettings, 0, 0, 3, 0, 0, 0, 100)
	ack := frame(http2.FrameSettings, http2.FlagSettingsAck)
	headers := frame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1, 2, 3)
	pre := []byte(http2.ClientPreface)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, tc := range map[string]struct{ in, want []byte }{
		"the first acknowledgement goes": {join(pre, settings, headers, ack, headers, ack), join(pre, settings, headers, headers, ack)},
		"HTTP/1.1 passes":                {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		"cut mid-frame":                  {join(pre, settings[:5]), join(pre, settings[:5])},
		"an acknowledgement with a body": {join(pre, frame(http2.FrameSettings, http2.FlagSettingsAck, 9, 9), headers), join(pre, headers)},
	} {
		for _, step := range []int{1, 7, 4096} {
			got, err := io.ReadAll(&ackFilter{Conn: &byteConn{data: tc.in, step: step}})
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("%s (reads of %d): %q %v, want %q", name, step, got, err, tc.want)
			}
		}
	}
}

// FuzzAckFilter: whatever a client sends, the filter neither panics nor changes anything
// but dropping one frame.
func FuzzAckFilter(f *testing.F) {
	f.Add(append([]byte(http2.ClientPreface), frame(http2.FrameSettings, http2.FlagSettingsAck)...), 3)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step < 1 || step > 1<<16 {
			return
		}
		got, _ := io.ReadAll(&ackFilter{Conn: &byteConn{data: in, step: step}})
		if len(got) > len(in) || !bytes.HasPrefix(in, got[:min(len(got), len(http2.ClientPreface))]) {
			t.Fatalf("output %q is not the input %q less a frame", got, in)
		}
	})
}
