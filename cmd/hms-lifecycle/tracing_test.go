package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
)

// otlpReceiver is an in-process OTLP/HTTP trace receiver: it keeps every span exported to
// it.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var msg coltracepb.ExportTraceServiceRequest
	if err == nil && req.URL.Path == "/v1/traces" {
		err = proto.Unmarshal(data, &msg)
	} else if err == nil {
		err = fmt.Errorf("unexpected path %s", req.URL.Path)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(b)
}

// trace waits for the spans of trace id (hex) until want of them have arrived.
func (r *otlpReceiver) trace(t *testing.T, id string, names ...string) map[string]*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		byName := map[string]*tracepb.Span{}
		r.mu.Lock()
		for _, s := range r.spans {
			if hex.EncodeToString(s.GetTraceId()) == id {
				byName[s.GetName()] = s
			}
		}
		r.mu.Unlock()
		missing := []string{}
		for _, n := range names {
			if byName[n] == nil {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return byName
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: spans %v never arrived; got %v", id, missing, keys(byName))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys(m map[string]*tracepb.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTraces: a transition, traced from the W3C context of the request through the RPC,
// the wait for the agent, a blocking webhook (which receives the context), the store
// commit and the publication, exported over OTLP to a receiver; over Connect and gRPC.
func TestTraces(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	var hookMu sync.Mutex
	var hookTraceparent string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hookTraceparent = r.Header.Get("traceparent")
		hookMu.Unlock()
	}))
	defer hook.Close()

	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export every 50 ms, not 5 s
	s := startServer(t, "--store", "memory", "--otlp-endpoint", collector.URL)
	c := s.client(t)
	if _, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "traced-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterHook(ctx, lifecycle.HookSpec{Name: "gate", Blocking: true, Timeout: 5 * time.Second,
		TriggerStates: []lifecycle.State{lifecycle.StateActive}, Config: map[string]string{"type": "webhook", "url": hook.URL}}); err != nil {
		t.Fatal(err)
	}

	// Connect, with the caller's trace context.
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, s.url+lifecyclev1connect.LifecycleManagerTransitionStateProcedure,
		bytes.NewReader([]byte(`{"agentId": "traced-1", "targetState": "ACTIVE", "reason": "traced"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"success":true`) {
		t.Fatalf("transition: %d %s", res.StatusCode, body)
	}

	rpcName := strings.TrimPrefix(lifecyclev1connect.LifecycleManagerTransitionStateProcedure, "/")
	spans := recv.trace(t, traceID, rpcName, "lifecycle.Transition", "lifecycle.wait_agent", "lifecycle.hook",
		"lifecycle.store.commit", "lifecycle.publish")
	id := func(name string) string { return hex.EncodeToString(spans[name].GetSpanId()) }
	parent := func(name string) string { return hex.EncodeToString(spans[name].GetParentSpanId()) }
	if parent(rpcName) != parentID || spans[rpcName].GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("the RPC span's parent is %s (kind %v), want the caller's %s", parent(rpcName), spans[rpcName].GetKind(), parentID)
	}
	if parent("lifecycle.Transition") != id(rpcName) {
		t.Errorf("lifecycle.Transition is not a child of the RPC span")
	}
	for _, step := range []string{"lifecycle.wait_agent", "lifecycle.hook", "lifecycle.store.commit", "lifecycle.publish"} {
		if parent(step) != id("lifecycle.Transition") {
			t.Errorf("%s is not a child of lifecycle.Transition", step)
		}
	}
	attr := func(name, key string) string {
		for _, kv := range spans[name].GetAttributes() {
			if kv.GetKey() == key {
				return fmt.Sprint(kv.GetValue().GetValue())
			}
		}
		return ""
	}
	if !strings.Contains(attr("lifecycle.hook", "hms.hook_name"), "gate") || !strings.Contains(attr("lifecycle.hook", "hms.hook_result"), "ALLOWED") ||
		!strings.Contains(attr("lifecycle.Transition", "hms.agent_id"), "traced-1") {
		t.Errorf("span attributes: hook %v, transition %v", spans["lifecycle.hook"].GetAttributes(), spans["lifecycle.Transition"].GetAttributes())
	}
	hookMu.Lock()
	if want := "00-" + traceID + "-" + id("lifecycle.hook") + "-01"; hookTraceparent != want {
		t.Errorf("the webhook got traceparent %q, want %q (its hook span)", hookTraceparent, want)
	}
	hookMu.Unlock()
	for _, s := range []string{rpcName, "lifecycle.Transition", "lifecycle.wait_agent", "lifecycle.hook", "lifecycle.store.commit", "lifecycle.publish"} {
		sp := spans[s]
		t.Logf("%-58s span %s parent %s %6d µs", s, id(s), parent(s), (sp.GetEndTimeUnixNano()-sp.GetStartTimeUnixNano())/1000)
	}

	// gRPC (grpc-go's side), the context in metadata.
	const grpcTrace = "0af7651916cd43dd8448eb211c80319c"
	mctx := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+grpcTrace+"-b7ad6b7169203331-01")
	var out v1.TransitionResponse
	gc, err := (&globals{server: s.url}).grpcClient()
	if err != nil {
		t.Fatal(err)
	}
	defer gc.conn.Close()
	if err := gc.conn.Invoke(mctx, lifecyclev1connect.LifecycleManagerTransitionStateProcedure,
		&v1.TransitionRequest{AgentId: "traced-1", TargetState: lifecycle.StatePaused}, &out); err != nil || !out.GetSuccess() {
		t.Fatal(err, out.GetErrorMessage())
	}
	recv.trace(t, grpcTrace, rpcName, "lifecycle.Transition", "lifecycle.store.commit")
}
