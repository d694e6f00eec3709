// Package pluginpb maps the plugin domain types to the hms.plugin.lifecycle.v1 protobuf
// messages and back.
package pluginpb

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Plugin maps a plugin version.
func Plugin(p *plugin.Plugin) *pluginv1.Plugin {
	return &pluginv1.Plugin{
		Id: p.ID, Version: p.Version, State: p.State, Revision: p.Revision, StateSince: timestamp(p.StateSince),
		LastSequence: p.LastSequence, Path: p.Path, Manifest: Manifest(p.Manifest), Errors: Errors(p.Errors),
		PackageMissing: p.PackageMissing, ReplacedBy: p.ReplacedBy, Generation: p.Generation, Endpoint: p.Endpoint,
		LastError: p.LastError, AllowedOperations: p.AllowedOperations, LastUsed: timestamp(p.LastUsed),
		Policy: PolicyState(&p.Policy),
	}
}

// PolicyState maps what the policies decided about a plugin version; nil when there is
// nothing to say.
func PolicyState(s *plugin.PolicyState) *pluginv1.PluginPolicyState {
	if *s == (plugin.PolicyState{}) {
		return nil
	}
	return &pluginv1.PluginPolicyState{FailoverTarget: s.FailoverTarget, FailoverNote: s.FailoverNote,
		Deactivation: s.Deactivation, Pressure: Pressure(s.Pressure), PressureThreshold: s.PressureThreshold}
}

// FromPolicyState maps a policy state back.
func FromPolicyState(pb *pluginv1.PluginPolicyState) plugin.PolicyState {
	return plugin.PolicyState{FailoverTarget: pb.GetFailoverTarget(), FailoverNote: pb.GetFailoverNote(),
		Deactivation: pb.GetDeactivation(), Pressure: FromPressure(pb.GetPressure()), PressureThreshold: pb.GetPressureThreshold()}
}

// Pressure maps a pressure reading; no reading is nil.
func Pressure(p plugin.Pressure) *pluginv1.PressureReading {
	if p.IsZero() {
		return nil
	}
	return &pluginv1.PressureReading{Cpu: p.CPU, Memory: p.Memory, Source: p.Source, Time: timestamp(p.Time)}
}

// FromPressure maps a pressure reading back.
func FromPressure(pb *pluginv1.PressureReading) plugin.Pressure {
	if pb == nil {
		return plugin.Pressure{}
	}
	return plugin.Pressure{CPU: pb.GetCpu(), Memory: pb.GetMemory(), Source: pb.GetSource(), Time: fromTimestamp(pb.GetTime())}
}

// FromPlugin maps a plugin version back.
func FromPlugin(pb *pluginv1.Plugin) plugin.Plugin {
	return plugin.Plugin{
		Ref: plugin.Ref{ID: pb.GetId(), Version: pb.GetVersion()}, State: pb.GetState(), Revision: pb.GetRevision(),
		StateSince: fromTimestamp(pb.GetStateSince()), LastSequence: pb.GetLastSequence(), Path: pb.GetPath(),
		Manifest: FromManifest(pb.GetManifest()), Errors: FromErrors(pb.GetErrors()), PackageMissing: pb.GetPackageMissing(),
		ReplacedBy: pb.GetReplacedBy(), Generation: pb.GetGeneration(), Endpoint: pb.GetEndpoint(), LastError: pb.GetLastError(),
		AllowedOperations: pb.GetAllowedOperations(), LastUsed: fromTimestamp(pb.GetLastUsed()),
		Policy: FromPolicyState(pb.GetPolicy()),
	}
}

// Manifest maps a manifest; nil stays nil.
func Manifest(m *manifest.Manifest) *pluginv1.PluginManifest {
	if m == nil {
		return nil
	}
	pb := &pluginv1.PluginManifest{ManifestVersion: m.ManifestVersion, HmaVersion: m.HMAVersion, Id: m.ID, Version: m.Version,
		Name: m.Name, Type: m.Type, Description: m.Description, ImplementedPorts: m.ImplementedPorts,
		ConsumedCorePorts: m.ConsumedCorePorts, Digest: m.Digest}
	if m.Runtime != nil {
		b, _ := json.Marshal(m.Runtime)
		pb.RuntimeJson = string(b)
	}
	return pb
}

// FromManifest maps a manifest back (without its parsed version); nil stays nil.
func FromManifest(pb *pluginv1.PluginManifest) *manifest.Manifest {
	if pb == nil {
		return nil
	}
	m := &manifest.Manifest{ManifestVersion: pb.GetManifestVersion(), HMAVersion: pb.GetHmaVersion(), ID: pb.GetId(),
		Version: pb.GetVersion(), Name: pb.GetName(), Type: pb.GetType(), Description: pb.GetDescription(),
		ImplementedPorts: pb.GetImplementedPorts(), ConsumedCorePorts: pb.GetConsumedCorePorts(), Digest: pb.GetDigest()}
	if pb.GetRuntimeJson() != "" {
		m.Runtime = &manifest.Runtime{}
		if json.Unmarshal([]byte(pb.GetRuntimeJson()), m.Runtime) != nil {
			m.Runtime = nil
		}
	}
	return m
}

// Errors maps manifest errors.
func Errors(fs []manifest.FieldError) []*pluginv1.ManifestError {
	var out []*pluginv1.ManifestError
	for _, f := range fs {
		out = append(out, &pluginv1.ManifestError{Pointer: f.Pointer, Message: f.Message})
	}
	return out
}

// FromErrors maps manifest errors back.
func FromErrors(pbs []*pluginv1.ManifestError) []manifest.FieldError {
	var out []manifest.FieldError
	for _, pb := range pbs {
		out = append(out, manifest.FieldError{Pointer: pb.GetPointer(), Message: pb.GetMessage()})
	}
	return out
}

// Event maps a plugin event.
func Event(ev *plugin.Event) *pluginv1.PluginEvent {
	if ev.Bookmark {
		return &pluginv1.PluginEvent{Sequence: ev.Sequence, Bookmark: true}
	}
	return &pluginv1.PluginEvent{Sequence: ev.Sequence, EventId: ev.EventID.String(), PluginId: ev.ID, Version: ev.Version,
		FromState: ev.From, ToState: ev.To, Operation: ev.Operation, InitiatedBy: ev.InitiatedBy, Reason: ev.Reason,
		Metadata: ev.Metadata, Timestamp: timestamp(ev.Time), Revision: ev.Revision}
}

// FromEvent maps a plugin event back.
func FromEvent(pb *pluginv1.PluginEvent) plugin.Event {
	id, _ := uuid.Parse(pb.GetEventId())
	return plugin.Event{Sequence: pb.GetSequence(), EventID: id, Ref: plugin.Ref{ID: pb.GetPluginId(), Version: pb.GetVersion()},
		From: pb.GetFromState(), To: pb.GetToState(), Operation: pb.GetOperation(), InitiatedBy: pb.GetInitiatedBy(),
		Reason: pb.GetReason(), Metadata: pb.GetMetadata(), Time: fromTimestamp(pb.GetTimestamp()), Revision: pb.GetRevision(),
		Bookmark: pb.GetBookmark()}
}

// ScanReport maps a scan's report.
func ScanReport(r *plugin.ScanReport) *pluginv1.ScanPluginsResponse {
	pb := &pluginv1.ScanPluginsResponse{}
	for _, l := range []struct {
		from []plugin.Plugin
		to   *[]*pluginv1.Plugin
	}{{r.Added, &pb.Added}, {r.Changed, &pb.Changed}, {r.Removed, &pb.Removed}} {
		for i := range l.from {
			*l.to = append(*l.to, Plugin(&l.from[i]))
		}
	}
	for _, rj := range r.Rejected {
		pb.Rejected = append(pb.Rejected, &pluginv1.RejectedPackage{Path: rj.Path, Errors: Errors(rj.Errors)})
	}
	return pb
}

// FromScanReport maps a scan's report back.
func FromScanReport(pb *pluginv1.ScanPluginsResponse) plugin.ScanReport {
	var r plugin.ScanReport
	for _, l := range []struct {
		from []*pluginv1.Plugin
		to   *[]plugin.Plugin
	}{{pb.GetAdded(), &r.Added}, {pb.GetChanged(), &r.Changed}, {pb.GetRemoved(), &r.Removed}} {
		for _, p := range l.from {
			*l.to = append(*l.to, FromPlugin(p))
		}
	}
	for _, rj := range pb.GetRejected() {
		r.Rejected = append(r.Rejected, plugin.Rejected{Path: rj.GetPath(), Errors: FromErrors(rj.GetErrors())})
	}
	return r
}
