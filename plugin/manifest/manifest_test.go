package manifest_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// valid is the specification's example manifest, as a map so tests can break it.
func valid() map[string]any {
	return map[string]any{
		"manifestVersion":   "1.0",
		"hmaVersion":        "1.3",
		"id":                "AOS-WardleyMapPlugin",
		"version":           "1.2.0",
		"name":              "Wardley Map",
		"type":              "L3-Capability",
		"description":       "Draws Wardley maps",
		"implementedPorts":  []any{"PluginExecutionPort"},
		"consumedCorePorts": []any{"CredBrokerQueryPort", "EventBusPort"},
	}
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validator(t testing.TB) *manifest.Validator {
	t.Helper()
	v, err := manifest.NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidManifests(t *testing.T) {
	v := validator(t)
	for name, change := range map[string]func(m map[string]any){
		"the specification's example": func(map[string]any) {},
		"only required fields": func(m map[string]any) {
			delete(m, "description")
			delete(m, "implementedPorts")
			delete(m, "consumedCorePorts")
		},
		"extra fields are accepted": func(m map[string]any) { m["vendor"] = "ACME"; m["tags"] = []any{1, 2} },
		"an orchestrator":           func(m map[string]any) { m["type"] = "L2-Orchestrator" },
		"a pre-release version":     func(m map[string]any) { m["version"] = "2.0.0-rc.1+build.5" },
		"a runtime block": func(m map[string]any) {
			m["runtime"] = map[string]any{"command": "./bin/plugin", "args": []any{"--port", "{port}"}, "env": map[string]any{"MODE": "fast"},
				"health":         map[string]any{"http": map[string]any{"path": "/ready"}, "intervalMs": 200, "failureThreshold": 2},
				"startTimeoutMs": 5000, "stopGracePeriodMs": 0}
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := valid()
			change(m)
			got, err := v.Validate(encode(t, m))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != m["id"] || got.Version != m["version"] || got.SemVer == nil || len(got.Digest) != 64 {
				t.Errorf("manifest %+v", got)
			}
		})
	}
	got, _ := v.Validate(encode(t, func() map[string]any {
		m := valid()
		m["runtime"] = map[string]any{"command": "x", "stopGracePeriodMs": 0}
		return m
	}()))
	if got.Runtime.StopGracePeriod() != 0 || got.Runtime.StartTimeout() != manifest.DefaultStartTimeout {
		t.Errorf("runtime durations: stop %v start %v", got.Runtime.StopGracePeriod(), got.Runtime.StartTimeout())
	}
}

func TestInvalidManifests(t *testing.T) {
	v := validator(t)
	cases := map[string]struct {
		change func(m map[string]any)
		want   []manifest.FieldError
	}{
		"wrong type of id":        {func(m map[string]any) { m["id"] = 7 }, []manifest.FieldError{{"/id", "got number, want string"}}},
		"wrong type of ports":     {func(m map[string]any) { m["implementedPorts"] = "PluginExecutionPort" }, []manifest.FieldError{{"/implementedPorts", "got string, want array"}}},
		"wrong type of a port":    {func(m map[string]any) { m["consumedCorePorts"] = []any{"EventBusPort", 3} }, []manifest.FieldError{{"/consumedCorePorts/1", "got number, want string"}}},
		"bad type enum":           {func(m map[string]any) { m["type"] = "L4-Magic" }, []manifest.FieldError{{"/type", "value must be one of 'L2-Orchestrator', 'L3-Capability'"}}},
		"unknown manifest":        {func(m map[string]any) { m["manifestVersion"] = "2.0" }, []manifest.FieldError{{"/manifestVersion", `unknown manifestVersion "2.0": this server reads "1.0"`}}},
		"bad semver":              {func(m map[string]any) { m["version"] = "1.2" }, []manifest.FieldError{{"/version", `"1.2" is not a semantic version (MAJOR.MINOR.PATCH, like 1.2.0)`}}},
		"semver with v":           {func(m map[string]any) { m["version"] = "v1.2.0" }, []manifest.FieldError{{"/version", `"v1.2.0" is not a semantic version (MAJOR.MINOR.PATCH, like 1.2.0)`}}},
		"bad id":                  {func(m map[string]any) { m["id"] = "9 lives" }, []manifest.FieldError{{"/id", `"9 lives" is not a plugin id: 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter`}}},
		"bad hma version":         {func(m map[string]any) { m["hmaVersion"] = "one" }, []manifest.FieldError{{"/hmaVersion", `"one" is not an HMA version (MAJOR.MINOR, like 1.3)`}}},
		"unknown core port":       {func(m map[string]any) { m["consumedCorePorts"] = []any{"EventBusPort", "TimeMachinePort"} }, []manifest.FieldError{{"/consumedCorePorts/1", `"TimeMachinePort" is not a port of the core; the core offers CredBrokerQueryPort, EventBusPort`}}},
		"runtime without command": {func(m map[string]any) { m["runtime"] = map[string]any{"args": []any{"x"}} }, []manifest.FieldError{{"/runtime/command", "required, missing"}}},
		"runtime unknown field":   {func(m map[string]any) { m["runtime"] = map[string]any{"command": "x", "restart": true} }, []manifest.FieldError{{"/runtime", "additional properties 'restart' not allowed"}}},
		"two health checks": {func(m map[string]any) {
			m["runtime"] = map[string]any{"command": "x", "health": map[string]any{"http": map[string]any{}, "grpc": map[string]any{}}}
		}, []manifest.FieldError{{"/runtime/health", "give one health check, http or grpc, not both"}}},
		"not an object": {nil, []manifest.FieldError{{"", "got array, want object"}}},
	}
	for _, field := range []string{"manifestVersion", "hmaVersion", "id", "version", "name", "type"} {
		cases["missing "+field] = struct {
			change func(m map[string]any)
			want   []manifest.FieldError
		}{func(m map[string]any) { delete(m, field) }, []manifest.FieldError{{"/" + field, "required, missing"}}}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var data []byte
			if tc.change == nil {
				data = []byte(`[1, 2]`)
			} else {
				m := valid()
				tc.change(m)
				data = encode(t, m)
			}
			_, err := v.Validate(data)
			var merr *manifest.Error
			if !errors.As(err, &merr) {
				t.Fatalf("error %v, want *manifest.Error", err)
			}
			if d := cmp.Diff(tc.want, merr.Fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
		})
	}
}

func TestMalformedAndOversized(t *testing.T) {
	v := validator(t)
	_, err := v.Validate([]byte("{\n  \"id\": \"x\",\n  oops\n}"))
	if err == nil || !strings.Contains(err.Error(), "invalid manifest: /: not valid JSON: invalid character 'o' looking for beginning of object key string (line 3") {
		t.Errorf("malformed: %v", err)
	}
	big := valid()
	big["description"] = strings.Repeat("x", manifest.MaxBytes)
	if _, err := v.Validate(encode(t, big)); err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Errorf("oversized: %v", err)
	}
	path := filepath.Join(t.TempDir(), manifest.FileName)
	os.WriteFile(path, encode(t, big), 0o644)
	if _, err := v.ReadFile(path); err == nil || !strings.Contains(err.Error(), "invalid "+path+": /: the manifest is larger") {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := v.ReadFile(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCorePortCatalogue(t *testing.T) {
	v, err := manifest.NewValidator([]string{"EventBusPort"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Validate(encode(t, valid()))
	if err == nil || !strings.Contains(err.Error(), `/consumedCorePorts/0: "CredBrokerQueryPort" is not a port of the core; the core offers EventBusPort`) {
		t.Errorf("catalogue: %v", err)
	}
}

// BenchmarkValidate: a typical manifest (the specification's example with a runtime
// block), with the median and p99 of single validations.
func BenchmarkValidate(b *testing.B) {
	v := validator(b)
	m := valid()
	m["runtime"] = map[string]any{"command": "./plugin", "health": map[string]any{"http": map[string]any{"path": "/healthz"}}}
	data, _ := json.Marshal(m)
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := v.Validate(data); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
}

// TestSchemaAndSemanticErrorsTogether: one round of validation reports the schema's
// problems and the semantic ones, each once, in pointer order.
func TestSchemaAndSemanticErrorsTogether(t *testing.T) {
	m := valid()
	m["type"] = "L9-Nothing"                     // schema: enum
	delete(m, "name")                            // schema: required
	m["version"] = "1.0"                         // semantic: not MAJOR.MINOR.PATCH
	m["consumedCorePorts"] = []any{"NoSuchPort"} // semantic: not the core's
	m["hmaVersion"] = 13                         // schema: a number, so no semantic check
	data, _ := json.Marshal(m)
	_, err := validator(t).Validate(data)
	var me *manifest.Error
	if !errors.As(err, &me) {
		t.Fatalf("Validate: %v", err)
	}
	var got []string
	for _, f := range me.Fields {
		got = append(got, f.Pointer)
	}
	if want := "/consumedCorePorts/0 /hmaVersion /name /type /version"; strings.Join(got, " ") != want {
		t.Errorf("reported %q, want the pointers %s", me.Fields, want)
	}
}
