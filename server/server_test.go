package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
	"github.com/hms-lifecycle/lifecycle/server"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

var ctx = context.Background()

// serve starts a server on loopback over a manager on the memory store.
func serve(t *testing.T) (*lifecycle.Manager, string) { return serveB(t) }

func serveB(t testing.TB, opts ...server.Option) (*lifecycle.Manager, string) {
	t.Helper()
	return serveStore(t, memory.New(), opts...)
}

// serveStore starts a server on loopback over a manager on s; the test's end closes all
// three.
func serveStore(t testing.TB, s interface {
	lifecycle.Store
	Close() error
}, opts ...server.Option) (*lifecycle.Manager, string) {
	t.Helper()
	m, err := lifecycle.New(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(m, opts...)
	go srv.Serve(ln)
	t.Cleanup(func() { m.Close(); srv.Close(); s.Close() })
	return m, "http://" + ln.Addr().String()
}

var protocols = []struct {
	name string
	opts client.Options
}{
	{"connect-proto", client.Options{Protocol: client.Connect}},
	{"connect-json", client.Options{Protocol: client.Connect, Encoding: "json"}},
	{"connect-cbor", client.Options{Protocol: client.Connect, Encoding: "cbor"}},
	{"grpc", client.Options{Protocol: client.GRPC}},
	{"grpc-json", client.Options{Protocol: client.GRPC, Encoding: "json"}},
	{"grpc-cbor", client.Options{Protocol: client.GRPC, Encoding: "cbor"}},
	{"grpcweb", client.Options{Protocol: client.GRPCWeb}},
	{"grpcweb-cbor", client.Options{Protocol: client.GRPCWeb, Encoding: "cbor"}},
}

func TestEveryProtocol(t *testing.T) {
	_, url := serve(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, err := client.New(url, &p.opts)
			if err != nil {
				t.Fatal(err)
			}
			id := "agent-" + p.name
			st, ev, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id, Labels: map[string]string{"proto": p.name}})
			if err != nil || st.State != lifecycle.StateInitialized || ev.Sequence == 0 || ev.InitiatedBy != server.Anonymous {
				t.Fatalf("RegisterAgent: %+v %+v %v", st, ev, err)
			}
			res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive, Reason: "go",
				Metadata: map[string]string{"k": "v"}})
			if err != nil || !res.Success || res.Event.Reason != "go" || res.Event.Metadata["k"] != "v" || res.Event.Type != lifecycle.TypeNormal {
				t.Fatalf("Transition: %+v, %v", res, err)
			}
			// A refusal is an answer on every protocol.
			res, err = c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateInitialized})
			if err != nil || res.Success || res.Refusal != lifecycle.RefusalInvalidTransition || !strings.Contains(res.Message, "allowed next states") {
				t.Fatalf("refused transition: %+v, %v", res, err)
			}
			got, err := c.GetState(ctx, id, true)
			if err != nil || got.State != lifecycle.StateActive || got.Labels["proto"] != p.name || got.Revision != 2 {
				t.Fatalf("GetState: %+v, %v", got, err)
			}
			page, err := c.History(ctx, lifecycle.HistoryRequest{AgentID: id})
			if err != nil || len(page.Events) != 2 || page.Events[1].ID != res.Event.ID && page.Events[1].To != lifecycle.StateActive {
				t.Fatalf("History: %+v, %v", page, err)
			}
			list, err := c.ListAgents(ctx, lifecycle.ListAgentsRequest{Labels: map[string]string{"proto": p.name}})
			if err != nil || len(list.Agents) != 1 || list.Agents[0].ID != id {
				t.Fatalf("ListAgents: %+v, %v", list, err)
			}
		})
	}
}

func TestStatusCodes(t *testing.T) {
	_, url := serve(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, _ := client.New(url, &p.opts)
			id := "codes-" + p.name
			c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id})
			tests := []struct {
				name string
				err  error
				code lifecycle.Code
				msg  string
			}{
				{"unknown agent", second(c.GetState(ctx, "nobody", false)), lifecycle.CodeNotFound, "agent nobody not found"},
				{"taken id", third(c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id})), lifecycle.CodeAlreadyExists, "already exists"},
				{"bad id", third(c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "bad id"})), lifecycle.CodeInvalidArgument, "agent_id"},
				{"bad target", second(c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: 77})), lifecycle.CodeInvalidArgument, "targetState: 77 is not a LifecycleState"},
				{"negative timeout", second(c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive, Timeout: -time.Second})), lifecycle.CodeInvalidArgument, "timeout_ms is negative"},
				{"bad limit", second(c.History(ctx, lifecycle.HistoryRequest{Limit: -1})), lifecycle.CodeInvalidArgument, "limit is negative"},
				{"unknown hook", c.UnregisterHook(ctx, "hook-x"), lifecycle.CodeNotFound, "hook hook-x not found"},
			}
			for _, tt := range tests {
				if lifecycle.ErrorCode(tt.err) != tt.code || !strings.Contains(tt.err.Error(), tt.msg) {
					t.Errorf("%s: %v, want %v mentioning %q", tt.name, tt.err, tt.code, tt.msg)
				}
			}
		})
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

func TestWatchResumesOverTheWire(t *testing.T) {
	m, url := serve(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, _ := client.New(url, &p.opts)
			id := "watched-" + p.name
			m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id})
			first, _ := m.History(ctx, lifecycle.HistoryRequest{AgentID: id})
			from := first.Events[0].Sequence
			w, err := c.Watch(ctx, lifecycle.WatchRequest{AgentID: id, FromSequence: from})
			if err != nil {
				t.Fatal(err)
			}
			cycle := func(n int) {
				for i := range n {
					m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[i%2]})
				}
			}
			cycle(4)
			var seen []int64
			for range 3 {
				ev := next(t, w)
				seen = append(seen, ev.Revision)
			}
			w.Close() // disconnect; transitions go on
			cycle(2)
			w, err = c.Watch(ctx, lifecycle.WatchRequest{AgentID: id, FromSequence: lastSeq(t, m, id, seen[len(seen)-1]) + 1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for len(seen) < 7 {
				seen = append(seen, next(t, w).Revision)
			}
			if fmt.Sprint(seen) != "[1 2 3 4 5 6 7]" {
				t.Fatalf("revisions seen across the reconnect: %v", seen)
			}
		})
	}
}

// lastSeq is the sequence of the agent's event at revision rev.
func lastSeq(t *testing.T, m *lifecycle.Manager, id string, rev int64) uint64 {
	page, _ := m.History(ctx, lifecycle.HistoryRequest{AgentID: id})
	for _, ev := range page.Events {
		if ev.Revision == rev {
			return ev.Sequence
		}
	}
	t.Fatalf("no event at revision %d", rev)
	return 0
}

func next(t *testing.T, w lifecycle.EventStream) lifecycle.Event {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := w.Next(cctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestShutdownEndsWatchResumably(t *testing.T) {
	m, url := serve(t)
	for _, p := range protocols {
		m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "w-" + p.name})
	}
	var streams []lifecycle.EventStream
	for _, p := range protocols {
		c, _ := client.New(url, &p.opts)
		w, err := c.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next(t, w)
		streams = append(streams, w)
	}
	m.Close()
	for i, w := range streams {
		var err error
		for err == nil {
			_, err = w.Next(ctx)
		}
		e, ok := err.(*lifecycle.Error)
		if !ok || e.Code != lifecycle.CodeUnavailable || e.ResumeSequence == 0 || !strings.Contains(e.Message, "watch again from sequence") {
			t.Errorf("%s: watch ended with %v", protocols[i].name, err)
		}
	}
}

// TestWatchIsEstablishedBeforeAnyEvent: Watch returns at once on every protocol, even
// when nothing has happened yet, and the first event then arrives on the open stream.
func TestWatchIsEstablishedBeforeAnyEvent(t *testing.T) {
	m, url := serve(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, _ := client.New(url, &p.opts)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			w, err := c.Watch(cctx, lifecycle.WatchRequest{AgentID: "later-" + p.name})
			if err != nil {
				t.Fatalf("Watch before any event: %v", err)
			}
			defer w.Close()
			m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "later-" + p.name})
			if ev := next(t, w); ev.AgentID != "later-"+p.name {
				t.Fatalf("got %+v", ev)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	_, url := serve(t)
	c, _ := client.New(url, nil)
	c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "m"})
	c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "m", Target: lifecycle.StateActive})
	c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "m", Target: lifecycle.StateInitialized})
	c.GetState(ctx, "nobody", false)
	w, _ := c.Watch(ctx, lifecycle.WatchRequest{})
	defer w.Close()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`hms_transitions_total{from="initialized",result="ok",to="active",type="normal"} 1`,
		`hms_transitions_total{from="active",result="invalid_transition",to="initialized",type="unspecified"} 1`,
		`hms_transition_duration_seconds_count 2`,
		`hms_watchers 1`,
		`hms_rpc_errors_total{code="not_found",method="GetState"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPlainHTTPBodies posts raw Connect-protocol bodies, as curl would: JSON and CBOR
// requests with their content types, and errors in the Connect JSON error format.
func TestPlainHTTPBodies(t *testing.T) {
	_, url := serve(t)
	post := func(method, contentType string, body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(url+"/hms.agent.lifecycle.v1.LifecycleManager/"+method, contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := post("RegisterAgent", "application/json", []byte(`{"agentId":"plain"}`))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"agentId":"plain"`) {
		t.Fatalf("JSON RegisterAgent: %s %s", resp.Status, body)
	}
	req, _ := pbcbor.Marshal(&v1.TransitionRequest{AgentId: "plain", TargetState: v1.LifecycleState_LIFECYCLE_STATE_ACTIVE, Reason: "cbor"})
	resp, body = post("TransitionState", "application/cbor", req)
	var res v1.TransitionResponse
	if err := pbcbor.Unmarshal(body, &res); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/cbor" || err != nil ||
		!res.GetSuccess() || res.GetEvent().GetReason() != "cbor" {
		t.Fatalf("CBOR TransitionState: %s %s %v %v", resp.Status, resp.Header.Get("Content-Type"), err, &res)
	}
	resp, body = post("GetState", "application/json", []byte(`{"agentId":"nobody"}`))
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Fatalf("JSON GetState of an unknown agent: %s %s", resp.Status, body)
	}
	resp, body = post("TransitionState", "application/cbor", []byte{0xbf, 0xff})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_argument") {
		t.Fatalf("malformed CBOR: %s %s", resp.Status, body)
	}
}

func TestRequestSizeLimit(t *testing.T) {
	_, url := serve(t)
	for _, p := range protocols {
		c, _ := client.New(url, &p.opts)
		_, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "big",
			Metadata: map[string]string{"blob": strings.Repeat("x", server.MaxRequestBytes)}})
		if lifecycle.ErrorCode(err) != lifecycle.CodeResourceExhausted {
			t.Errorf("%s: a request over %d bytes: %v", p.name, server.MaxRequestBytes, err)
		}
	}
}

// TestRemoteHookWorker: a client in another "process" serves callback hooks over the
// ServeHooks stream, exactly as an in-process callback would.
func TestRemoteHookWorker(t *testing.T) {
	for _, p := range []struct {
		name string
		opts client.Options
	}{{"grpc", client.Options{Protocol: client.GRPC}}, {"connect", client.Options{Protocol: client.Connect}}} {
		t.Run(p.name, func(t *testing.T) {
			_, url := serve(t)
			worker, _ := client.New(url, &p.opts)
			defer worker.Close()
			notified := make(chan lifecycle.HookCall, 10)
			if err := worker.HandleCallback("freeze", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
				if !c.Blocking {
					notified <- c
					return lifecycle.HookDecision{}, nil
				}
				return lifecycle.HookDecision{Veto: c.Event.To == lifecycle.StatePaused, Reason: "frozen remotely"}, nil
			}); err != nil {
				t.Fatal(err)
			}
			c, _ := client.New(url, nil)
			c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "r"})
			for _, spec := range []lifecycle.HookSpec{
				{Name: "gate", Blocking: true, Config: map[string]string{"callback": "freeze"}},
				{Name: "notify", Config: map[string]string{"callback": "freeze"}},
			} {
				if res, err := c.RegisterHook(ctx, spec); err != nil || !res.Success {
					t.Fatal(res, err)
				}
			}
			if res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "r", Target: lifecycle.StateActive}); err != nil || !res.Success {
				t.Fatalf("allowed by the remote worker: %+v, %v", res, err)
			}
			res, _ := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "r", Target: lifecycle.StatePaused})
			if res.Success || res.Refusal != lifecycle.RefusalHookVetoed || !strings.Contains(res.Message, "frozen remotely") {
				t.Fatalf("vetoed by the remote worker: %+v", res)
			}
			select {
			case call := <-notified:
				if call.Event.To != lifecycle.StateActive || call.Event.Sequence == 0 {
					t.Errorf("non-blocking call: %+v", call)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the remote worker got no non-blocking call")
			}
			// Without a worker, the hook fails (and, policy fail, refuses).
			worker.HandleCallback("freeze", nil)
			time.Sleep(100 * time.Millisecond)
			res, _ = c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "r", Target: lifecycle.StateMaintenance})
			if res.Success || res.Refusal != lifecycle.RefusalHookFailed {
				t.Fatalf("without the worker: %+v", res)
			}
		})
	}
}
