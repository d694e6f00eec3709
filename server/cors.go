package server

import (
	"net/http"
	"strings"
)

// CORS: browsers on another origin may call the server when their origin is allowed
// (WithCORS; `serve --cors-origin`). Off by default: no Access-Control-* headers at all.

// corsAllowHeaders are the request headers the Connect, gRPC-Web and gRPC protocols send
// (connectrpc.com/cors's list), plus Authorization for bearer tokens.
var corsAllowHeaders = strings.Join([]string{
	"Content-Type", "Content-Encoding", "Accept-Encoding",
	"Connect-Protocol-Version", "Connect-Timeout-Ms", "Connect-Accept-Encoding", "Connect-Content-Encoding",
	"Grpc-Timeout", "Grpc-Accept-Encoding", "Grpc-Encoding", "X-Grpc-Web", "X-User-Agent",
	"Authorization",
}, ", ")

// corsExposeHeaders are the response headers and trailers browsers must let the page read:
// gRPC-Web's status in headers (trailers-only responses), Connect's, and the server's own.
var corsExposeHeaders = strings.Join([]string{
	"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin", "Grpc-Encoding", "Grpc-Accept-Encoding",
	"Connect-Content-Encoding", "Connect-Accept-Encoding", "Content-Encoding",
	ResumeHeader, VersionHeader,
}, ", ")

// WithCORS lets pages of these origins ("https://app.example.com", or "*" for any) call
// the server: preflight OPTIONS requests are answered, and responses carry the
// Access-Control-* headers the Connect, gRPC-Web and gRPC protocols need.
func WithCORS(origins ...string) Option {
	return func(o *options) { o.corsOrigins = append(o.corsOrigins, origins...) }
}

func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	any := false
	allowed := map[string]bool{}
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			any = true
		}
		allowed[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(any || allowed[origin]) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Max-Age", "7200")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
