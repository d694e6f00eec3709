// Package manifest reads and validates plugin-manifest.json: first against the JSON Schema
// of the plugin specification (embedded, checked by santhosh-tekuri/jsonschema), then the
// checks a schema cannot make (semantic versions, id syntax, the core's port catalogue).
// Every problem is reported with the JSON pointer of its field.
package manifest

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// FileName is the manifest's name at the root of a plugin package.
const FileName = "plugin-manifest.json"

// Limits.
const (
	MaxBytes    = 64 << 10 // a manifest file
	MaxIDLength = 128
	MaxPorts    = 64 // implementedPorts, consumedCorePorts each
	// Version is the manifestVersion this package reads.
	Version = "1.0"
)

// Types of plugin.
const (
	TypeOrchestrator = "L2-Orchestrator"
	TypeCapability   = "L3-Capability"
)

// DefaultCorePorts is the core's port catalogue when none is configured: the ports the
// specification names.
var DefaultCorePorts = []string{"CredBrokerQueryPort", "EventBusPort"}

// Manifest is a valid plugin-manifest.json.
type Manifest struct {
	ManifestVersion   string   `json:"manifestVersion"`
	HMAVersion        string   `json:"hmaVersion"`
	ID                string   `json:"id"`
	Version           string   `json:"version"`
	Name              string   `json:"name"`
	Type              string   `json:"type"`
	Description       string   `json:"description,omitempty"`
	ImplementedPorts  []string `json:"implementedPorts,omitempty"`
	ConsumedCorePorts []string `json:"consumedCorePorts,omitempty"`
	Runtime           *Runtime `json:"runtime,omitempty"`

	// Digest is the SHA-256 of the manifest's bytes, hex: the same (id, version) with
	// another digest is another plugin claiming a taken version.
	Digest string `json:"-"`
	// SemVer is Version parsed.
	SemVer *semver.Version `json:"-"`
}

// Runtime says how to run the plugin (an addition to the specification's manifest).
type Runtime struct {
	Command           string            `json:"command"`
	Args              []string          `json:"args,omitempty"`
	Env               map[string]string `json:"env,omitempty"`
	WorkingDir        string            `json:"workingDir,omitempty"`
	Health            *Health           `json:"health,omitempty"`
	StartTimeoutMs    int               `json:"startTimeoutMs,omitempty"`
	StopGracePeriodMs *int              `json:"stopGracePeriodMs,omitempty"`
}

// Health is the plugin's health check: HTTP GET of a path, or the gRPC health service, on
// the port the manager gives the plugin. Without one, a started process counts as healthy.
type Health struct {
	HTTP             *HTTPCheck `json:"http,omitempty"`
	GRPC             *GRPCCheck `json:"grpc,omitempty"`
	IntervalMs       int        `json:"intervalMs,omitempty"`
	FailureThreshold int        `json:"failureThreshold,omitempty"`
}

// HTTPCheck: a 2xx answer to GET path is healthy.
type HTTPCheck struct {
	Path string `json:"path,omitempty"`
}

// GRPCCheck: grpc.health.v1.Health/Check of service answering SERVING is healthy.
type GRPCCheck struct {
	Service string `json:"service,omitempty"`
}

// Runtime defaults.
const (
	DefaultStartTimeout     = 30 * time.Second
	DefaultStopGracePeriod  = 10 * time.Second
	DefaultHealthInterval   = time.Second
	DefaultFailureThreshold = 3
	DefaultHealthPath       = "/healthz"
)

// StartTimeout is how long activation waits for the plugin to be healthy.
func (r *Runtime) StartTimeout() time.Duration {
	return orDefault(r.StartTimeoutMs, DefaultStartTimeout)
}

// StopGracePeriod is how long deactivation waits after SIGTERM before SIGKILL.
func (r *Runtime) StopGracePeriod() time.Duration {
	if r.StopGracePeriodMs == nil {
		return DefaultStopGracePeriod
	}
	return time.Duration(*r.StopGracePeriodMs) * time.Millisecond
}

// Interval is the time between health checks of a running plugin.
func (h *Health) Interval() time.Duration { return orDefault(h.IntervalMs, DefaultHealthInterval) }

// Failures is how many health checks in a row must fail for the plugin to be failed.
func (h *Health) Failures() int {
	if h.FailureThreshold <= 0 {
		return DefaultFailureThreshold
	}
	return h.FailureThreshold
}

func orDefault(ms int, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// FieldError is one problem, at the field JSON pointer Pointer ("" is the whole document).
type FieldError struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

func (e FieldError) String() string {
	p := e.Pointer
	if p == "" {
		p = "/"
	}
	return p + ": " + e.Message
}

// Error lists every problem of an invalid manifest.
type Error struct {
	Source string // the file, or "manifest"
	Fields []FieldError
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return fmt.Sprintf("invalid %s: %s", e.Source, strings.Join(parts, "; "))
}

//go:embed plugin-manifest.schema.json
var schemaJSON []byte

// Validator checks manifests. It is safe for concurrent use.
type Validator struct {
	schema    *jsonschema.Schema
	corePorts []string
	printer   *message.Printer
}

// NewValidator returns a validator against the core's port catalogue (nil:
// DefaultCorePorts).
func NewValidator(corePorts []string) (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("manifest schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("plugin-manifest.schema.json", doc); err != nil {
		return nil, fmt.Errorf("manifest schema: %w", err)
	}
	sch, err := c.Compile("plugin-manifest.schema.json")
	if err != nil {
		return nil, fmt.Errorf("manifest schema: %w", err)
	}
	if corePorts == nil {
		corePorts = DefaultCorePorts
	}
	return &Validator{schema: sch, corePorts: slices.Clone(corePorts), printer: message.NewPrinter(language.English)}, nil
}

// Schema is the embedded JSON Schema.
func Schema() []byte { return slices.Clone(schemaJSON) }

// ReadFile reads and validates the manifest at path (at most MaxBytes).
func (v *Validator) ReadFile(path string) (*Manifest, error) {
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	return v.validate(path, data)
}

// Read reads a manifest file, at most MaxBytes and one more (so that Validate can tell that
// it is too large).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return data, nil
}

// Validate validates a manifest's bytes.
func (v *Validator) Validate(data []byte) (*Manifest, error) { return v.validate("manifest", data) }

func (v *Validator) validate(source string, data []byte) (*Manifest, error) {
	fail := func(fields ...FieldError) (*Manifest, error) { return nil, &Error{Source: source, Fields: fields} }
	if len(data) > MaxBytes {
		return fail(FieldError{"", fmt.Sprintf("the manifest is larger than %d bytes", MaxBytes)})
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fail(FieldError{"", "not valid JSON: " + jsonProblem(data, err)})
	}
	if obj, ok := doc.(map[string]any); ok {
		if mv, ok := obj["manifestVersion"].(string); ok && mv != Version {
			return fail(FieldError{"/manifestVersion", fmt.Sprintf("unknown manifestVersion %q: this server reads %q", mv, Version)})
		}
	}
	// Schema and semantic problems are reported together, so that one round of fixes
	// suffices; a semantic check is skipped where the schema already found a problem.
	var fields []FieldError
	if err := v.schema.Validate(doc); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return fail(FieldError{"", err.Error()})
		}
		v.leaves(verr, &fields)
	}
	obj, _ := doc.(map[string]any)
	for _, f := range v.semantic(obj) {
		if !slices.ContainsFunc(fields, func(g FieldError) bool { return g.Pointer == f.Pointer }) {
			fields = append(fields, f)
		}
	}
	if len(fields) > 0 {
		slices.SortStableFunc(fields, func(a, b FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
		return fail(fields...)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fail(FieldError{"", err.Error()})
	}
	sum := sha256.Sum256(data)
	m.Digest = hex.EncodeToString(sum[:])
	m.SemVer, _ = semver.StrictNewVersion(m.Version) // checked by semantic
	return &m, nil
}

// semantic makes the checks a schema cannot, on the fields that have the right type (a
// field of the wrong type is the schema's to report).
func (v *Validator) semantic(obj map[string]any) []FieldError {
	var fields []FieldError
	if id, ok := obj["id"].(string); ok && !idPattern.MatchString(id) {
		fields = append(fields, FieldError{"/id", fmt.Sprintf("%q is not a plugin id: 1-%d characters of letters, digits, '.', '_' and '-', starting with a letter", id, MaxIDLength)})
	}
	if ver, ok := obj["version"].(string); ok {
		if _, err := semver.StrictNewVersion(ver); err != nil {
			fields = append(fields, FieldError{"/version", fmt.Sprintf("%q is not a semantic version (MAJOR.MINOR.PATCH, like 1.2.0)", ver)})
		}
	}
	if hv, ok := obj["hmaVersion"].(string); ok && !hmaVersionPattern.MatchString(hv) {
		fields = append(fields, FieldError{"/hmaVersion", fmt.Sprintf("%q is not an HMA version (MAJOR.MINOR, like 1.3)", hv)})
	}
	for _, name := range []string{"implementedPorts", "consumedCorePorts"} {
		if ports, ok := obj[name].([]any); ok && len(ports) > MaxPorts {
			fields = append(fields, FieldError{"/" + name, fmt.Sprintf("%d ports, at most %d allowed", len(ports), MaxPorts)})
		}
	}
	if ports, ok := obj["consumedCorePorts"].([]any); ok {
		for i, p := range ports {
			if p, ok := p.(string); ok && !slices.Contains(v.corePorts, p) {
				fields = append(fields, FieldError{"/consumedCorePorts/" + strconv.Itoa(i), fmt.Sprintf(
					"%q is not a port of the core; the core offers %s", p, strings.Join(v.corePorts, ", "))})
			}
		}
	}
	if rt, ok := obj["runtime"].(map[string]any); ok {
		if h, ok := rt["health"].(map[string]any); ok && h["http"] != nil && h["grpc"] != nil {
			fields = append(fields, FieldError{"/runtime/health", "give one health check, http or grpc, not both"})
		}
	}
	return fields
}

var (
	idPattern         = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]{0,127}$`)
	hmaVersionPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
)

// leaves collects the innermost schema errors, each at its field's pointer; a missing
// required property is reported at the property's own pointer.
func (v *Validator) leaves(e *jsonschema.ValidationError, out *[]FieldError) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			v.leaves(c, out)
		}
		return
	}
	ptr := pointer(e.InstanceLocation)
	if req, ok := e.ErrorKind.(*kind.Required); ok {
		for _, name := range req.Missing {
			*out = append(*out, FieldError{ptr + "/" + escape(name), "required, missing"})
		}
		return
	}
	*out = append(*out, FieldError{ptr, e.ErrorKind.LocalizedString(v.printer)})
}

func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(escape(tok))
	}
	return b.String()
}

func escape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// jsonProblem says where the JSON is malformed.
func jsonProblem(data []byte, err error) string {
	var syn *json.SyntaxError
	if errors.As(json.Unmarshal(data, new(any)), &syn) {
		line := 1 + bytes.Count(data[:syn.Offset], []byte("\n"))
		return fmt.Sprintf("%v (line %d, byte %d)", syn, line, syn.Offset)
	}
	return err.Error()
}
