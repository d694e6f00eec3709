package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGRPCurl drives the server with grpcurl over plain gRPC, using server reflection
// instead of proto files. `make test` builds grpcurl into .bin/ from tools/go.mod; a plain
// `go test ./...` builds it from there itself when it is missing.
func TestGRPCurl(t *testing.T) {
	grpcurl, err := filepath.Abs("../../.bin/grpcurl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(grpcurl); err != nil {
		grpcurl = filepath.Join(t.TempDir(), "grpcurl")
		build := exec.Command("go", "build", "-o", grpcurl, "github.com/fullstorydev/grpcurl/cmd/grpcurl")
		build.Dir = "../../tools" // the version pinned in tools/go.mod
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build grpcurl from tools/go.mod: %v\n%s", err, out)
		}
	}
	s := startServer(t, "--store", "memory")
	addr := strings.TrimPrefix(s.url, "http://")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		return string(out), err
	}
	const svc = "hms.agent.lifecycle.v1.LifecycleManager"
	tests := []struct {
		args    []string
		fails   bool
		mention []string
	}{
		{[]string{addr, "list"}, false, []string{svc, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"}},
		{[]string{addr, "describe", "hms.agent.lifecycle.v1.LifecycleState"}, false, []string{"LIFECYCLE_STATE_ACTIVE = 2", "LIFECYCLE_STATE_RECOVERING = 10"}},
		{[]string{addr, "grpc.health.v1.Health/Check"}, false, []string{`"status": "SERVING"`}},
		{[]string{"-d", `{"agent_id":"g","labels":{"via":"grpcurl"}}`, addr, svc + "/RegisterAgent"}, false, []string{`"agentId": "g"`, `"LIFECYCLE_STATE_INITIALIZED"`}},
		{[]string{"-d", `{"agent_id":"g","target_state":"LIFECYCLE_STATE_ACTIVE","reason":"grpcurl"}`, addr, svc + "/TransitionState"}, false, []string{`"success": true`, `"TRANSITION_TYPE_NORMAL"`}},
		{[]string{"-d", `{"agent_id":"g","target_state":"LIFECYCLE_STATE_INITIALIZED"}`, addr, svc + "/TransitionState"}, false, []string{`"REFUSAL_REASON_INVALID_TRANSITION"`}},
		{[]string{"-d", `{"agent_id":"g","limit":10}`, addr, svc + "/GetTransitionHistory"}, false, []string{`"reason": "grpcurl"`}},
		{[]string{"-d", `{"agent_id":"nobody"}`, addr, svc + "/GetState"}, true, []string{"Code: NotFound", "agent nobody not found"}},
		{[]string{"-d", `{"agent_id":"g","target_state":"LIFECYCLE_STATE_UNSPECIFIED"}`, addr, svc + "/TransitionState"}, true, []string{"Code: InvalidArgument", "target_state"}},
		{[]string{"-d", `{"agent_id":"g"}`, addr, svc + "/RegisterAgent"}, true, []string{"Code: AlreadyExists"}},
	}
	for _, tt := range tests {
		out, err := run(tt.args...)
		if (err != nil) != tt.fails {
			t.Errorf("grpcurl %v: err %v\n%s", tt.args, err, out)
			continue
		}
		for _, m := range tt.mention {
			if !strings.Contains(out, m) {
				t.Errorf("grpcurl %v: output lacks %q:\n%s", tt.args, m, out)
			}
		}
	}
}
