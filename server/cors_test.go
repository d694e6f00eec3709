package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

func corsHandler(t *testing.T, opts ...Option) http.Handler {
	t.Helper()
	m, err := lifecycle.New(t.Context(), memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return NewHandler(m, opts...)
}

func preflight(h http.Handler, origin string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodOptions, "/hms.agent.lifecycle.v1.LifecycleManager/GetState", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,connect-protocol-version,x-grpc-web")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCORS(t *testing.T) {
	h := corsHandler(t, WithCORS("http://app.example"))
	rec := preflight(h, "http://app.example")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("preflight from an allowed origin: %d", rec.Code)
	}
	hd := rec.Header()
	if hd.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight headers: %v", hd)
	}
	for _, want := range []string{"Connect-Protocol-Version", "X-Grpc-Web", "Grpc-Timeout", "Content-Type", "Authorization"} {
		if !strings.Contains(hd.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers lacks %s: %q", want, hd.Get("Access-Control-Allow-Headers"))
		}
	}
	// A real call from the allowed origin: the headers the page must read are exposed.
	req := httptest.NewRequest(http.MethodPost, "/hms.agent.lifecycle.v1.LifecycleManager/ListAgents", strings.NewReader("{}"))
	req.Header.Set("Origin", "http://app.example")
	req.Header.Set("Content-Type", "application/json")
	res := httptest.NewRecorder()
	h.ServeHTTP(res, req)
	if res.Code != http.StatusOK || res.Header().Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Fatalf("call: %d %v", res.Code, res.Header())
	}
	for _, want := range []string{"Grpc-Status", "Grpc-Message", ResumeHeader} {
		if !strings.Contains(res.Header().Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("Access-Control-Expose-Headers lacks %s", want)
		}
	}
	// Another origin gets no CORS headers (the browser refuses the call).
	rec = preflight(h, "http://evil.example")
	if v := rec.Header().Get("Access-Control-Allow-Origin"); v != "" || rec.Code == http.StatusNoContent {
		t.Fatalf("preflight from a disallowed origin: %d, Access-Control-Allow-Origin %q", rec.Code, v)
	}
}

func TestCORSOffByDefault(t *testing.T) {
	rec := preflight(corsHandler(t), "http://app.example")
	if rec.Code == http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("without WithCORS: %d %v", rec.Code, rec.Header())
	}
}

func TestCORSAnyOrigin(t *testing.T) {
	rec := preflight(corsHandler(t, WithCORS("*")), "http://anything.example:8080")
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "http://anything.example:8080" {
		t.Fatalf("with *: %d %v", rec.Code, rec.Header())
	}
}
