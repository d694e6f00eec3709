package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
)

func post(t *testing.T, url, method, contentType string, body []byte) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url+"/hms.agent.lifecycle.v1.LifecycleManager/"+method, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A misspelt enum name or an unknown field is INVALID_ARGUMENT naming the field, the value
// and the accepted values, over Connect and over grpc-go, in JSON and CBOR; the
// specification's short names are accepted.
func TestStrictRequests(t *testing.T) {
	m, url := serve(t)
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "x1"}); err != nil {
		t.Fatal(err)
	}
	typo := `{"agentId":"x1","targetState":"LIFECYCLE_STATE_ACTIVE","expectedState":"LIFECYCLE_STATE_TERMINATD"}`
	resp, body := post(t, url, "TransitionState", "application/json", []byte(typo))
	if resp.StatusCode != 400 || !strings.Contains(body, `"code":"invalid_argument"`) ||
		!strings.Contains(body, `expectedState: \"LIFECYCLE_STATE_TERMINATD\" is not a LifecycleState; accepted: UNSPECIFIED, INITIALIZED`) {
		t.Errorf("misspelt expected state over Connect: %s %s", resp.Status, body)
	}
	resp, body = post(t, url, "ListAgents", "application/json", []byte(`{"states":["ACTIVE","PAUSD"]}`))
	if resp.StatusCode != 400 || !strings.Contains(body, `states[1]: \"PAUSD\"`) {
		t.Errorf("misspelt states filter: %s %s", resp.Status, body)
	}
	resp, body = post(t, url, "GetState", "application/json", []byte(`{"agentId":"x1","includeDetail":true}`))
	if resp.StatusCode != 400 || !strings.Contains(body, `unknown field \"includeDetail\" in GetStateRequest`) {
		t.Errorf("unknown field: %s %s", resp.Status, body)
	}
	resp, body = post(t, url, "TransitionState", "application/cbor", []byte("\xa1\x6btargetState\x65ACTIV"))
	if resp.StatusCode != 400 || !strings.Contains(body, `targetState: \"ACTIV\" is not a LifecycleState`) {
		t.Errorf("misspelt enum in CBOR: %s %s", resp.Status, body)
	}
	resp, body = post(t, url, "TransitionState", "application/json", []byte(`{"agent_id":"x1","target_state":"ACTIVE","expected_state":"INITIALIZED"}`))
	if resp.StatusCode != 200 || !strings.Contains(body, `"success":true`) || !strings.Contains(body, `"currentState":"LIFECYCLE_STATE_ACTIVE"`) {
		t.Errorf("short names: %s %s", resp.Status, body)
	}

	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []byte
	err = conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerTransitionStateProcedure, []byte(typo), &out, grpc.ForceCodecV2(rawCodec{}))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `expectedState: "LIFECYCLE_STATE_TERMINATD" is not a LifecycleState`) {
		t.Errorf("misspelt expected state over grpc-go: %v", err)
	}
	err = conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerTransitionStateProcedure, []byte(`{"agentId":"x1","targetState":"PAUSED"}`), &out, grpc.ForceCodecV2(rawCodec{}))
	if err != nil || !strings.Contains(string(out), `"success":true`) {
		t.Errorf("short name over grpc-go: %s %v", out, err)
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, lifecyclev1connect.LifecycleManagerWatchEventsProcedure, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	stream.SendMsg([]byte(`{"transitionTypes":["FORCE"]}`))
	stream.CloseSend()
	if err := stream.RecvMsg(&out); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `transitionTypes[0]: "FORCE" is not a TransitionType`) {
		t.Errorf("misspelt watch filter over grpc-go: %v", err)
	}
}

// A truncated envelope on a stream is the client's error: INVALID_ARGUMENT, not INTERNAL.
func TestTruncatedEnvelope(t *testing.T) {
	_, url := serve(t)
	env := make([]byte, 5, 10)
	binary.BigEndian.PutUint32(env[1:], 100) // promises 100 bytes, sends 2
	env = append(env, '{', '}')
	resp, body := post(t, url, "WatchEvents", "application/connect+json", env)
	if !strings.Contains(body, `"code":"invalid_argument"`) {
		t.Errorf("truncated Connect envelope: %s %s", resp.Status, body)
	}
	resp, body = post(t, url, "WatchEvents", "application/grpc-web+json", env)
	if resp.Header.Get("Grpc-Status") != "3" {
		t.Errorf("truncated gRPC-Web envelope: %s %v %q", resp.Status, resp.Header, body)
	}
	// Unary gRPC-Web: the envelope cut short, and a prefix cut short.
	for _, cut := range [][]byte{env, env[:3]} {
		resp, body = post(t, url, "GetState", "application/grpc-web+json", cut)
		if resp.Header.Get("Grpc-Status") != "3" || !strings.Contains(resp.Header.Get("Grpc-Message"), "cut%20short") {
			t.Errorf("truncated unary gRPC-Web envelope (%d bytes): %s %v %q", len(cut), resp.Status, resp.Header, body)
		}
	}
	// A whole one still works.
	whole := append(binary.BigEndian.AppendUint32([]byte{0}, 16), `{"agentId":"x1"}`...)
	if resp, body = post(t, url, "GetState", "application/grpc-web+json", whole); resp.Header.Get("Grpc-Status") != "5" {
		t.Errorf("whole unary gRPC-Web request: %s %v %q; want NOT_FOUND", resp.Status, resp.Header, body)
	}
}

// rawCodec sends and receives JSON bytes as they are, as a client that writes JSON does.
type rawCodec struct{}

func (rawCodec) Name() string { return "json" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
