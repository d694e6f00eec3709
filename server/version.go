package server

import (
	"net/http"
	"runtime/debug"
	"sync"
)

// VersionHeader is the response header, on every response of a server (Connect, gRPC-Web,
// gRPC, /metrics, health), that names the server's version.
const VersionHeader = "Hms-Server-Version"

// modulePath is this module's path, found among a program's dependencies when another
// module embeds the server.
const modulePath = "github.com/hms-lifecycle/lifecycle"

// Version is the version of this module in the running program: the module version when
// it was built from a tagged module (go install …@v1.2.3, or as a dependency), else the
// VCS revision it was built from ("devel+abc123def456", "+dirty" for uncommitted
// changes), else "devel".
var Version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	mod := &info.Main
	if mod.Path != modulePath {
		for _, d := range info.Deps {
			if d.Path == modulePath {
				mod = d
				if d.Replace != nil {
					mod = d.Replace
				}
				break
			}
		}
	}
	if mod.Version != "" && mod.Version != "(devel)" {
		return mod.Version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	return "devel+" + rev[:min(len(rev), 12)] + dirty
})

// withVersion names the server's version on every HTTP response.
func withVersion(next http.Handler) http.Handler {
	v := Version()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(VersionHeader, v)
		next.ServeHTTP(w, r)
	})
}
