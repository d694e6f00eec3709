package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func serve(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// TestHandler: the redirect, the hashed assets cached for good, index.html for the
// application's routes (revalidated), 404 for a missing file, GET only.
func TestHandler(t *testing.T) {
	files := fstest.MapFS{
		"index.html":          {Data: []byte(`<!doctype html><div id="app"></div>`)},
		"assets/index-abc.js": {Data: []byte(`console.log(1)`)},
	}
	h := &handler{files: files, static: http.FileServerFS(files)}

	if rec := serve(t, h, "GET", "/ui"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/index.html", "/ui/agents/a-1", "/ui/plugins/com.example.greeter"} {
		rec := serve(t, h, "GET", p)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="app"`) {
			t.Errorf("GET %s: %d %q", p, rec.Code, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: headers %v", p, rec.Header())
		}
	}
	rec := serve(t, h, "GET", "/ui/assets/index-abc.js")
	if rec.Code != http.StatusOK || rec.Body.String() != "console.log(1)" || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("asset: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("asset content type %q", ct)
	}
	if rec := serve(t, h, "GET", "/ui/assets/missing.js"); rec.Code != http.StatusNotFound {
		t.Errorf("missing asset: %d", rec.Code)
	}
	if rec := serve(t, h, "GET", "/ui/../../etc/passwd"); rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), `id="app"`) {
		t.Errorf("path traversal served %q", rec.Body)
	}
	if rec := serve(t, h, "POST", "/ui/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	if rec := serve(t, h, "HEAD", "/ui/"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", rec.Code, rec.Body)
	}
}

// TestEmbedded: the committed build is in the binary, and its index.html loads assets
// that are there.
func TestEmbedded(t *testing.T) {
	h := Handler()
	rec := serve(t, h, "GET", "/ui/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /ui/: %d", rec.Code)
	}
	body := rec.Body.String()
	i := strings.Index(body, `src="/ui/assets/`)
	if i < 0 {
		t.Fatalf("index.html loads no script from /ui/assets/: %s", body)
	}
	src := body[i+len(`src="`):]
	src = src[:strings.IndexByte(src, '"')]
	if rec := serve(t, h, "GET", src); rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		t.Errorf("GET %s: %d", src, rec.Code)
	}
}
