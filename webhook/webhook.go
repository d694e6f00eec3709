// Package webhook is the hook target type "webhook": a hook that POSTs each invocation to
// an HTTP endpoint, which may veto a blocking transition in its reply.
//
// Hook config keys: "url" (http or https, required), "encoding" (json — the default —,
// proto or cbor), "secret" (signs each request, see Verify), "header.<Name>" (extra request
// headers). Endpoints must resolve to addresses in the allowlist (loopback only by
// default), checked at registration and again when connecting, and redirects are not
// followed, so hooks cannot be pointed at arbitrary internal addresses.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
)

// Headers of every webhook request.
const (
	SignatureHeader      = "Hms-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
	HookIDHeader         = "Hms-Hook-Id"
	IdempotencyKeyHeader = "Hms-Idempotency-Key"
)

// MaxReply bounds how much of a reply is read.
const MaxReply = 64 << 10

// DefaultAllow is the allowlist when none is given: loopback only.
func DefaultAllow() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// Target is the "webhook" lifecycle.TargetType.
type Target struct {
	allow  []netip.Prefix
	client *http.Client
}

var _ lifecycle.TargetType = (*Target)(nil)

// New returns the target type; allow lists the networks endpoints may be in (nil means
// DefaultAllow()).
func New(allow []netip.Prefix) *Target {
	if allow == nil {
		allow = DefaultAllow()
	}
	t := &Target{allow: allow}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		// The address actually dialled, after name resolution: no DNS rebinding around the check.
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return t.allowed(ap.Addr())
	}}
	t.client = &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect could point anywhere: it is a failed call
		},
	}
	return t
}

func (t *Target) allowed(a netip.Addr) error {
	a = a.Unmap()
	for _, p := range t.allow {
		if p.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("%s is not in the webhook allowlist %v", a, t.allow)
}

type encoding struct {
	contentType string
	marshal     func(proto.Message) ([]byte, error)
	unmarshal   func([]byte, proto.Message) error
}

var encodings = map[string]encoding{
	"json":  {"application/json", protojson.Marshal, protojson.Unmarshal},
	"proto": {"application/proto", proto.Marshal, proto.Unmarshal},
	"cbor":  {"application/cbor", pbcbor.Marshal, pbcbor.Unmarshal},
}

func invalid(format string, args ...any) error {
	return lifecycle.Errorf(lifecycle.CodeInvalidArgument, format, args...)
}

// Target implements lifecycle.TargetType.
func (t *Target) Target(hook lifecycle.Hook, config map[string]string) (lifecycle.HookFunc, error) {
	enc := encodings["json"]
	var secret string
	headers := http.Header{}
	for k, v := range config {
		switch {
		case k == "url":
		case k == "encoding":
			e, ok := encodings[v]
			if !ok {
				return nil, invalid("config[encoding]: %q: use json, proto or cbor", v)
			}
			enc = e
		case k == "secret":
			if len(v) < 16 {
				return nil, invalid("config[secret]: at least 16 characters")
			}
			secret = v
		case strings.HasPrefix(k, "header."):
			headers.Set(strings.TrimPrefix(k, "header."), v)
		default:
			return nil, invalid("config: unknown key %q for a webhook hook; known keys: url, encoding, secret, header.<Name>, failure_policy, max_attempts", k)
		}
	}
	endpoint, err := t.checkURL(config["url"])
	if err != nil {
		return nil, err
	}
	shown := redactURL(endpoint)
	return func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
		return t.call(ctx, endpoint, shown, enc, secret, headers, call)
	}, nil
}

// checkURL parses the endpoint and checks where it resolves to now; the dialer checks
// again at each connection.
func (t *Target) checkURL(raw string) (string, error) {
	if raw == "" {
		return "", invalid("config[url] is empty: give the endpoint to POST to")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", invalid("config[url] %q: want an http:// or https:// URL", raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return "", invalid("config[url]: cannot resolve %s: %v", u.Hostname(), err)
	}
	for _, a := range addrs {
		if err := t.allowed(a); err != nil {
			return "", invalid("config[url]: %s resolves to %v", u.Hostname(), err)
		}
	}
	return u.String(), nil
}

// redactURL is the endpoint as errors show it: hook outcomes, which carry them, are
// readable by viewers, and credentials in the URL are write-only.
func redactURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.User == nil {
		return endpoint
	}
	u.User = url.User("xxxxx")
	return u.String()
}

func (t *Target) call(ctx context.Context, endpoint, shown string, enc encoding, secret string, headers http.Header, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
	body, err := enc.marshal(&v1.WebhookRequest{
		HookId: call.HookID, HookName: call.HookName, Blocking: call.Blocking, Event: lifecyclepb.Event(&call.Event),
		IdempotencyKey: call.IdempotencyKey, Attempt: int32(call.Attempt), Deadline: timestamppb.New(call.Deadline),
	})
	if err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("encode webhook request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return lifecycle.HookDecision{}, err
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", enc.contentType)
	req.Header.Set("Accept", enc.contentType)
	req.Header.Set(HookIDHeader, call.HookID)
	req.Header.Set(IdempotencyKeyHeader, call.IdempotencyKey)
	// The W3C trace context of the hook's span, when the transition is traced.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if secret != "" {
		req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) { // its URL keeps a user name
			return lifecycle.HookDecision{}, fmt.Errorf("webhook %s: %s: %w", shown, ue.Op, ue.Err)
		}
		return lifecycle.HookDecision{}, fmt.Errorf("webhook %s: %w", shown, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply))
	if err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("webhook %s: read reply: %w", shown, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return lifecycle.HookDecision{}, fmt.Errorf("webhook %s answered %s: %.200s", shown, resp.Status, reply)
	}
	if len(reply) == 0 {
		return lifecycle.HookDecision{}, nil
	}
	var answer v1.WebhookResponse
	if err := enc.unmarshal(reply, &answer); err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("webhook %s: the reply is not a WebhookResponse in %s: %w", shown, enc.contentType, err)
	}
	return lifecycle.HookDecision{Veto: answer.GetVeto(), Reason: answer.GetReason()}, nil
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's SignatureHeader against its body: receivers call it to know
// the request comes from the lifecycle server, and was signed within tolerance of now
// (which bounds replays).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("webhook signature: malformed header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook signature: signed %v ago, outside the tolerance of %v", d.Round(time.Second), tolerance)
	}
	want, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(want, mac(secret, ts, body)) {
		return errors.New("webhook signature: does not match the body")
	}
	return nil
}
