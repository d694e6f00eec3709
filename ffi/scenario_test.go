package ffi_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle/ffi"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// The shared conformance scenarios (testdata/scenarios/README.md), run through the
// library's Go layer: embedded (the Manager) and remote (client.Client against a server).

const scenarioDir = "../testdata/scenarios"

type scenario struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Config      map[string]any `json:"config"`
	Steps       []step         `json:"steps"`
}

type step struct {
	Call                string            `json:"call"`
	Service             string            `json:"service"`
	Request             json.RawMessage   `json:"request"`
	Expect              json.RawMessage   `json:"expect"`
	ExpectError         string            `json:"expectError"`
	ExpectErrorContains string            `json:"expectErrorContains"`
	Save                map[string]string `json:"save"`
	Watch               string            `json:"watch"`
	Method              string            `json:"method"`
	Next                string            `json:"next"`
	ThenNothingFor      int               `json:"thenNothingFor"`
	End                 string            `json:"end"`
	CloseWatch          string            `json:"closeWatch"`
	Hooks               string            `json:"hooks"`
	Callbacks           []string          `json:"callbacks"`
	Answer              string            `json:"answer"`
	Reason              string            `json:"reason"`
	Invocations         string            `json:"invocations"`
	CloseHooks          string            `json:"closeHooks"`
}

func (s *step) String() string {
	for _, kv := range [][2]string{{"call", s.Call}, {"watch", s.Watch}, {"next", s.Next}, {"end", s.End},
		{"closeWatch", s.CloseWatch}, {"hooks", s.Hooks}, {"invocations", s.Invocations}, {"closeHooks", s.CloseHooks}} {
		if kv[1] != "" {
			return kv[0] + " " + kv[1]
		}
	}
	return "?"
}

func loadScenarios(t *testing.T) map[string]scenario {
	files, err := filepath.Glob(filepath.Join(scenarioDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", scenarioDir, err)
	}
	out := map[string]scenario{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc scenario
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = sc
	}
	return out
}

func TestScenariosEmbedded(t *testing.T) {
	for file, sc := range loadScenarios(t) {
		t.Run(strings.TrimSuffix(file, ".json"), func(t *testing.T) {
			lib := ffi.New()
			cfg := map[string]any{}
			if repo, ok := sc.Config["plugin_repo"].(string); ok {
				cfg["plugin_repo"] = pluginRepoCopy(t, repo)
			}
			b, _ := json.Marshal(cfg)
			h, err := lib.Open(b)
			if err != nil {
				t.Fatal(err)
			}
			runScenario(t, lib, h, file, sc)
			if err := lib.Close(h); err != nil {
				t.Fatal(err)
			}
			if n := lib.Handles(); n != 0 {
				t.Fatalf("%d handles left open", n)
			}
		})
	}
}

func TestScenariosRemote(t *testing.T) {
	for file, sc := range loadScenarios(t) {
		t.Run(strings.TrimSuffix(file, ".json"), func(t *testing.T) {
			repo := ""
			if r, ok := sc.Config["plugin_repo"].(string); ok {
				repo = pluginRepoCopy(t, r)
			}
			url := startServer(t, repo)
			lib := ffi.New()
			h, err := lib.Open([]byte(`{"endpoint":"` + url + `"}`))
			if err != nil {
				t.Fatal(err)
			}
			runScenario(t, lib, h, file, sc)
			if err := lib.Close(h); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// pluginRepoCopy copies a scenario's plugin repository, so that nothing is written beside
// the scenarios.
func pluginRepoCopy(t *testing.T, rel string) string {
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(scenarioDir, rel))); err != nil {
		t.Fatal(err)
	}
	return dst
}

type runner struct {
	t       *testing.T
	lib     *ffi.Library
	h       uint64
	where   string
	saved   map[string]any
	streams map[string]uint64
	workers map[string]*hookWorker
}

func runScenario(t *testing.T, lib *ffi.Library, h uint64, file string, sc scenario) {
	r := &runner{t: t, lib: lib, h: h, saved: map[string]any{}, streams: map[string]uint64{}, workers: map[string]*hookWorker{}}
	defer func() {
		for _, s := range r.streams {
			lib.CloseStream(s)
		}
		for _, w := range r.workers {
			w.close()
		}
	}()
	for i := range sc.Steps {
		st := &sc.Steps[i]
		r.where = fmt.Sprintf("scenario %s step %d (%s)", file, i+1, st)
		r.run(st)
		if t.Failed() {
			return
		}
	}
}

func (r *runner) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s: %s", r.where, fmt.Sprintf(format, args...))
}

// value decodes a step's JSON with saved values substituted.
func (r *runner) value(raw json.RawMessage) any {
	if len(raw) == 0 {
		return map[string]any{}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		r.fatalf("%v", err)
	}
	return r.substitute(v)
}

func (r *runner) substitute(v any) any {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "${") && strings.HasSuffix(x, "}") {
			val, ok := r.saved[x[2:len(x)-1]]
			if !ok {
				r.fatalf("nothing saved as %s", x)
			}
			return val
		}
	case map[string]any:
		for k, e := range x {
			x[k] = r.substitute(e)
		}
	case []any:
		for i, e := range x {
			x[i] = r.substitute(e)
		}
	}
	return v
}

func service(s string) string {
	if s == "plugins" {
		return "hms.plugin.lifecycle.v1.PluginLifecycleManager/"
	}
	return "hms.agent.lifecycle.v1.LifecycleManager/"
}

func streamService(method string) string {
	if method == "WatchPluginEvents" {
		return service("plugins")
	}
	return service("agents")
}

func decodeJSON(b []byte) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&v)
	return v
}

var codeNames = map[int32]string{1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
	6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
	11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}

func (r *runner) checkError(err error, want, contains string) {
	code, msg, _ := ffi.Status(err)
	if err == nil {
		r.fatalf("succeeded, want %s", want)
	}
	if codeNames[code] != want {
		r.fatalf("error %s (%s), want %s", codeNames[code], msg, want)
	}
	if contains != "" && !strings.Contains(msg, contains) {
		r.fatalf("error message %q does not contain %q", msg, contains)
	}
}

func (r *runner) run(st *step) {
	switch {
	case st.Call != "":
		req, _ := json.Marshal(r.value(st.Request))
		res, err := r.lib.Call(r.h, service(st.Service)+st.Call, wire.JSON, req, nil)
		if st.ExpectError != "" {
			r.checkError(err, st.ExpectError, st.ExpectErrorContains)
			return
		}
		if err != nil {
			_, msg, _ := ffi.Status(err)
			r.fatalf("error: %s", msg)
		}
		got := decodeJSON(res)
		if len(st.Expect) > 0 {
			if why := match(r.value(st.Expect), got, ""); why != "" {
				r.fatalf("%s\nresponse: %s", why, res)
			}
		}
		for name, path := range st.Save {
			v, ok := lookup(got, path)
			if !ok {
				r.fatalf("save %s: no %s in %s", name, path, res)
			}
			r.saved[name] = v
		}
	case st.Watch != "":
		req, _ := json.Marshal(r.value(st.Request))
		s, err := r.lib.Watch(r.h, streamService(st.Method)+st.Method, wire.JSON, req)
		if st.ExpectError != "" {
			r.checkError(err, st.ExpectError, st.ExpectErrorContains)
			return
		}
		if err != nil {
			r.fatalf("%v", err)
		}
		r.streams[st.Watch] = s
	case st.Next != "":
		s := r.stream(st.Next)
		want, _ := r.value(st.Expect).([]any)
		deadline := time.Now().Add(10 * time.Second)
		var got []any
		for len(got) < len(want) && time.Now().Before(deadline) {
			batch, err := r.lib.Next(s, time.Until(deadline), len(want)-len(got))
			if err != nil {
				_, msg, _ := ffi.Status(err)
				r.fatalf("stream ended after %d of %d items: %s", len(got), len(want), msg)
			}
			got = append(got, splitBatch(batch)...)
		}
		if len(got) < len(want) {
			r.fatalf("%d of %d items within 10s", len(got), len(want))
		}
		for i := range want {
			if why := match(want[i], got[i], fmt.Sprintf("[%d]", i)); why != "" {
				b, _ := json.Marshal(got[i])
				r.fatalf("%s\nitem: %s", why, b)
			}
		}
		if st.ThenNothingFor > 0 {
			batch, err := r.lib.Next(s, time.Duration(st.ThenNothingFor)*time.Millisecond, 0)
			if err == nil && len(batch) > 0 {
				r.fatalf("unexpected item: %s", splitBatch(batch))
			}
		}
	case st.End != "":
		s := r.stream(st.End)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			_, err := r.lib.Next(s, time.Until(deadline), 0)
			if err != nil {
				r.checkError(err, st.ExpectError, st.ExpectErrorContains)
				return
			}
		}
		r.fatalf("the stream did not end within 10s")
	case st.CloseWatch != "":
		if err := r.lib.CloseStream(r.stream(st.CloseWatch)); err != nil {
			r.fatalf("%v", err)
		}
		delete(r.streams, st.CloseWatch)
	case st.Hooks != "":
		hello, _ := json.Marshal(map[string]any{"callbacks": st.Callbacks})
		h, err := r.lib.HooksOpen(r.h, wire.JSON, hello)
		if err != nil {
			r.fatalf("%v", err)
		}
		w := &hookWorker{lib: r.lib, h: h, answer: st.Answer, reason: st.Reason, done: make(chan struct{})}
		go w.serve()
		r.workers[st.Hooks] = w
	case st.Invocations != "":
		w, ok := r.workers[st.Invocations]
		if !ok {
			r.fatalf("no hook worker %s", st.Invocations)
		}
		var want int
		json.Unmarshal(st.Expect, &want)
		if n := w.count(); n != want {
			r.fatalf("%d invocations, want %d", n, want)
		}
	case st.CloseHooks != "":
		w, ok := r.workers[st.CloseHooks]
		if !ok {
			r.fatalf("no hook worker %s", st.CloseHooks)
		}
		w.close()
		delete(r.workers, st.CloseHooks)
	default:
		r.fatalf("a step needs one of call, watch, next, end, closeWatch, hooks, invocations, closeHooks")
	}
}

func (r *runner) stream(name string) uint64 {
	s, ok := r.streams[name]
	if !ok {
		r.fatalf("no stream %s", name)
	}
	return s
}

func splitBatch(b []byte) []any {
	var out []any
	for len(b) >= 4 {
		n := binary.LittleEndian.Uint32(b)
		out = append(out, decodeJSON(b[4:4+n]))
		b = b[4+n:]
	}
	return out
}

// hookWorker answers invocations as a scenario says.
type hookWorker struct {
	lib            *ffi.Library
	h              uint64
	answer, reason string
	mu             sync.Mutex
	n              int
	done           chan struct{}
}

func (w *hookWorker) count() int { w.mu.Lock(); defer w.mu.Unlock(); return w.n }

func (w *hookWorker) serve() {
	defer close(w.done)
	for {
		batch, err := w.lib.Next(w.h, -1, 0)
		if err != nil {
			return
		}
		for _, item := range splitBatch(batch) {
			id, _ := lookup(item, "invocationId")
			w.mu.Lock()
			w.n++
			w.mu.Unlock()
			reply := map[string]any{"invocationId": id}
			switch w.answer {
			case "veto":
				reply["veto"], reply["reason"] = true, w.reason
			case "error":
				reply["error"] = w.reason
			case "ignore":
				continue
			}
			b, _ := json.Marshal(reply)
			w.lib.Complete(w.h, b)
		}
	}
}

func (w *hookWorker) close() {
	w.lib.CloseStream(w.h)
	<-w.done
}

// lookup follows a dotted path.
func lookup(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// match says why got does not match want ("" when it does), by the README's rules.
func match(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		if c, ok := w["$contains"]; ok && len(w) == 1 {
			s, _ := got.(string)
			if !strings.Contains(s, fmt.Sprint(c)) {
				return fmt.Sprintf("%s: %q does not contain %q", path, s, c)
			}
			return ""
		}
		if l, ok := w["$len"]; ok && len(w) == 1 {
			a, _ := got.([]any)
			if fmt.Sprint(len(a)) != fmt.Sprint(l) {
				return fmt.Sprintf("%s: %d elements, want %v", path, len(a), l)
			}
			return ""
		}
		g, _ := got.(map[string]any)
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if isZero(wv) {
					continue
				}
				return fmt.Sprintf("%s.%s: absent, want %v", path, k, wv)
			}
			if why := match(wv, gv, path+"."+k); why != "" {
				return why
			}
		}
		return ""
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return fmt.Sprintf("%s: %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			if why := match(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); why != "" {
				return why
			}
		}
		return ""
	case json.Number, string, bool, nil:
		if fmt.Sprint(want) == fmt.Sprint(got) || reflect.DeepEqual(want, got) {
			return ""
		}
		return fmt.Sprintf("%s: %v, want %v", path, got, want)
	}
	return fmt.Sprintf("%s: cannot match %T", path, want)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case bool:
		return !x
	case json.Number:
		return x == "0"
	case string:
		return x == "" || x == "0" || strings.HasSuffix(x, "_UNSPECIFIED")
	case []any:
		return len(x) == 0
	case map[string]any:
		if l, ok := x["$len"]; ok && len(x) == 1 {
			return fmt.Sprint(l) == "0"
		}
		return len(x) == 0
	case nil:
		return true
	}
	return false
}
