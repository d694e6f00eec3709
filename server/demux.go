package server

import (
	"bytes"
	"io"
	"net"
	"slices"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The demultiplexer sends a gRPC connection to grpc-go and any other to net/http, judging
// by the content type of the connection's first request. gRPC clients (grpc-go's among
// them) wait for the server's SETTINGS frame before they send a request, so the matcher
// answers the client's SETTINGS with an empty one of its own; net/http, which then gets
// the other connections, would take the client's acknowledgement of that frame for a
// protocol error, so ackFilter removes it.

// grpcMatcher reports whether an HTTP/2 connection's first request has a gRPC content type
// (gRPC-Web's is not one).
func grpcMatcher(w io.Writer, r io.Reader) bool {
	r = io.LimitReader(r, 64<<10) // what the demultiplexer buffers before deciding
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(r, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return false
	}
	framer := http2.NewFramer(w, r)
	matched, done, sent := false, false, false
	dec := hpack.NewDecoder(4<<10, func(f hpack.HeaderField) {
		if f.Name == "content-type" {
			matched = slices.Contains(grpcContentTypes, f.Value)
		}
	})
	for !done {
		f, err := framer.ReadFrame()
		if err != nil {
			return false
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && !sent {
				if err := framer.WriteSettings(); err != nil {
					return false
				}
				sent = true
			}
		case *http2.HeadersFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return false
			}
			done = f.HeadersEnded()
		case *http2.ContinuationFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return false
			}
			done = f.HeadersEnded()
		}
	}
	return matched
}

// ackListener wraps the connections for net/http in ackFilter.
type ackListener struct{ net.Listener }

func (l ackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ackFilter{Conn: c}, nil
}

// ackFilter passes an HTTP/2 connection's bytes through, less the first SETTINGS
// acknowledgement (the one for the matcher's SETTINGS frame). Anything that is not HTTP/2
// passes untouched.
type ackFilter struct {
	net.Conn
	in, out []byte // read and not yet parsed; parsed and not yet handed out
	preface bool
	done    bool // the acknowledgement is gone (or will never come): pass everything
	err     error
}

func (c *ackFilter) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.done && len(c.in) == 0 {
			if c.err != nil {
				return 0, c.err
			}
			return c.Conn.Read(p)
		}
		if c.parse(); len(c.out) > 0 {
			break
		}
		if c.err != nil { // the connection ended mid-frame: hand out what there is
			c.out, c.in, c.done = append(c.out, c.in...), nil, true
			continue
		}
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.in, c.err = append(c.in, buf[:n]...), err
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// parse moves whole frames from in to out, dropping the first SETTINGS acknowledgement.
func (c *ackFilter) parse() {
	if c.done {
		c.out, c.in = append(c.out, c.in...), nil
		return
	}
	if !c.preface {
		n := min(len(c.in), len(http2.ClientPreface))
		if !bytes.Equal(c.in[:n], []byte(http2.ClientPreface[:n])) {
			c.done = true // not HTTP/2
			c.parse()
			return
		}
		if n < len(http2.ClientPreface) {
			return
		}
		c.out, c.in, c.preface = append(c.out, c.in[:n]...), c.in[n:], true
	}
	for len(c.in) >= 9 {
		length := int(c.in[0])<<16 | int(c.in[1])<<8 | int(c.in[2])
		if len(c.in) < 9+length {
			return
		}
		if http2.FrameType(c.in[3]) == http2.FrameSettings && http2.Flags(c.in[4]).Has(http2.FlagSettingsAck) {
			c.in = c.in[9+length:] // (an acknowledgement has no payload; if it has, it goes too)
			c.done = true
			c.parse()
			return
		}
		c.out, c.in = append(c.out, c.in[:9+length]...), c.in[9+length:]
	}
}
