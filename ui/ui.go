// Package ui serves the web console (the Vite build in dist/, embedded in the binary) at
// /ui/: hashed assets are cached for good, index.html is revalidated, and any other path
// outside assets/ is a route of the single-page application (index.html).
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// csp keeps the page to its own origin: scripts, styles and API calls come from the server
// that serves it.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the console under Prefix, and redirects Prefix without its slash to it.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: it is always there
	}
	return &handler{files: files, static: http.FileServerFS(files)}
}

type handler struct {
	files  fs.FS
	static http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the console is read with GET", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", csp)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if name != "" && name != "index.html" {
		if st, err := fs.Stat(h.files, name); err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				// Vite names assets by their content's hash: a new build has new names.
				hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				hdr.Set("Cache-Control", "no-cache")
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + name
			h.static.ServeHTTP(w, r2)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			http.NotFound(w, r)
			return
		}
	}
	// The application's own routes (/ui/agents/x, …) all load index.html.
	hdr.Set("Cache-Control", "no-cache")
	index, err := fs.ReadFile(h.files, "index.html")
	if err != nil {
		http.Error(w, "the console was not built into this binary (make ui)", http.StatusNotFound)
		return
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(index)
}
