package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/server"
)

func scrape(t *testing.T, url, accept string) (string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp.Header
}

// TestREDMetrics: requests by method, protocol and code, and unary durations, on the
// Connect stack and on grpc-go; the build info; OpenMetrics when asked for.
func TestREDMetrics(t *testing.T) {
	_, url := serve(t)
	for _, p := range []client.Protocol{client.Connect, client.GRPC, client.GRPCWeb} {
		c, err := client.New(url, &client.Options{Protocol: p})
		if err != nil {
			t.Fatal(err)
		}
		c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "red-" + string(p)})
		c.GetState(ctx, "nobody", false)
		c.GetState(ctx, "nobody", false)
	}
	body, hdr := scrape(t, url, "")
	for _, want := range []string{
		`hms_rpc_requests_total{code="ok",method="RegisterAgent",protocol="connect",service="hms.agent.lifecycle.v1.LifecycleManager"} 1`,
		`hms_rpc_requests_total{code="not_found",method="GetState",protocol="connect",service="hms.agent.lifecycle.v1.LifecycleManager"} 2`,
		`hms_rpc_requests_total{code="ok",method="RegisterAgent",protocol="grpc",service="hms.agent.lifecycle.v1.LifecycleManager"} 1`,
		`hms_rpc_requests_total{code="not_found",method="GetState",protocol="grpc",service="hms.agent.lifecycle.v1.LifecycleManager"} 2`,
		`hms_rpc_requests_total{code="not_found",method="GetState",protocol="grpcweb",service="hms.agent.lifecycle.v1.LifecycleManager"} 2`,
		`hms_rpc_duration_seconds_count{method="GetState",protocol="grpc",service="hms.agent.lifecycle.v1.LifecycleManager"} 2`,
		`hms_rpc_duration_seconds_count{method="RegisterAgent",protocol="connect",service="hms.agent.lifecycle.v1.LifecycleManager"} 1`,
		`hms_build_info{goversion="go`,
		`version="` + server.Version() + `"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("without Accept: Content-Type %q", ct)
	}
	if v := hdr.Get(server.VersionHeader); v == "" || v != server.Version() {
		t.Errorf("/metrics: %s %q, want %q", server.VersionHeader, v, server.Version())
	}
	body, hdr = scrape(t, url, "application/openmetrics-text; version=1.0.0; charset=utf-8")
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics asked for: Content-Type %q, body ends %q", ct, body[max(0, len(body)-20):])
	}
}

// TestVersionHeader: every response names the server's version, gRPC's (grpc-go) too.
func TestVersionHeader(t *testing.T) {
	_, url := serve(t)
	resp, err := http.Post(url+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get(server.VersionHeader); v != server.Version() {
		t.Errorf("Connect: %s %q, want %q", server.VersionHeader, v, server.Version())
	}
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var md metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	if v := md.Get(server.VersionHeader); len(v) != 1 || v[0] != server.Version() {
		t.Errorf("gRPC: %s %q, want %q", server.VersionHeader, v, server.Version())
	}
}
