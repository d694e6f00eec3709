package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// ScanReport is what a scan of the repository found.
type ScanReport struct {
	// Added: versions registered by this scan (then validated).
	Added []Plugin
	// Changed: versions whose manifest changed.
	Changed []Plugin
	// Removed: versions whose package is gone (they stay registered, marked missing).
	Removed []Plugin
	// Rejected: folders that are not a usable plugin package.
	Rejected []Rejected
}

// Rejected is a folder of the repository that is not a usable plugin package.
type Rejected struct {
	Path   string
	Errors []manifest.FieldError
}

// Scan reads the repository: every folder with a plugin-manifest.json is a plugin
// package. New versions are registered (Discovered) and validated (Registered, or they
// stay Discovered with their errors); with AutoActivate they are then loaded and
// activated. Versions whose package is gone are reported and marked missing, not dropped.
func (m *Manager) Scan(ctx context.Context) (ScanReport, error) {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	var rep ScanReport
	if m.repo == "" {
		return rep, lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "no plugin repository is configured")
	}
	root, err := filepath.EvalSymlinks(m.repo)
	if err != nil {
		return rep, fmt.Errorf("scan plugin repository: %w", err)
	}
	dirents, err := os.ReadDir(root)
	if err != nil {
		return rep, fmt.Errorf("scan plugin repository: %w", err)
	}
	seen := map[string]bool{}
	for _, d := range dirents {
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if d.Type()&os.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(filepath.Join(root, name))
			if err != nil || !within(root, target) {
				rep.Rejected = append(rep.Rejected, Rejected{name, []manifest.FieldError{{Message: "a symlink escaping the repository"}}})
				continue
			}
			if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
				continue
			}
		} else if !d.IsDir() {
			continue
		}
		key, rej := m.scanPackage(ctx, root, name, &rep)
		if rej != nil {
			rep.Rejected = append(rep.Rejected, *rej)
		}
		if key != "" {
			seen[key] = true
		}
	}
	// Packages gone since the last scan.
	m.mu.Lock()
	var gone []*entry
	for k, e := range m.entries {
		if !seen[k] && !e.missing && e.path != "" {
			e.missing = true
			gone = append(gone, e)
		}
	}
	m.mu.Unlock()
	for _, e := range gone {
		m.log.Warn("plugin package removed from the repository", "plugin", e.ref.String(), "path", e.path)
		if p, err := m.view(ctx, e); err == nil {
			rep.Removed = append(rep.Removed, p)
		}
	}
	for _, rj := range rep.Rejected {
		m.log.Warn("plugin package rejected", "path", rj.Path, "errors", rj.Errors)
	}
	return rep, nil
}

// within reports whether path is root or inside it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// scanPackage reconciles one package folder with the registry and returns its version's
// key, or why the folder is rejected.
func (m *Manager) scanPackage(ctx context.Context, root, name string, rep *ScanReport) (string, *Rejected) {
	file := filepath.Join(root, name, manifest.FileName)
	reject := func(fields ...manifest.FieldError) (string, *Rejected) { return "", &Rejected{name, fields} }
	if fi, err := os.Lstat(file); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return reject(manifest.FieldError{Message: "no " + manifest.FileName})
		}
		return reject(manifest.FieldError{Message: err.Error()})
	} else if fi.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(file)
		if err != nil || !within(root, target) {
			return reject(manifest.FieldError{Pointer: "", Message: manifest.FileName + " is a symlink escaping the repository"})
		}
	}
	data, err := manifest.Read(file)
	if err != nil {
		return reject(manifest.FieldError{Message: err.Error()})
	}
	man, verr := m.validator.Validate(data)
	ref, ok := identity(data)
	if !ok {
		return reject(fieldErrors(verr)...)
	}
	if verr == nil {
		ref = Ref{man.ID, man.Version}
	}
	key := ref.key()
	m.mu.Lock()
	e := m.entries[key]
	m.mu.Unlock()
	if e == nil {
		var err error
		if e, err = m.register(ctx, ref, name); err != nil {
			return reject(manifest.FieldError{Message: err.Error()})
		}
		if err := m.accept(ctx, e, 1, man, verr, "", InitiatorDiscovery); err == nil {
			m.autoActivate(ctx, e)
		} else if verr == nil {
			m.log.Error("validate plugin", "plugin", ref.String(), "err", err)
		}
		if p, err := m.view(ctx, e); err == nil {
			rep.Added = append(rep.Added, p)
		}
		return key, nil
	}
	m.mu.Lock()
	if e.path != name {
		other := e.path
		m.mu.Unlock()
		if verr == nil && e.manifest != nil && e.manifest.Digest == man.Digest {
			return "", nil // the same package twice: nothing to do
		}
		return reject(manifest.FieldError{Pointer: "/version", Message: fmt.Sprintf(
			"plugin %s is already registered from %s with different content: a version is registered once", ref, other)})
	}
	changed := e.missing || !sameManifest(e.manifest, man) || !slices.Equal(e.errors, fieldErrors(verr))
	e.missing = false
	e.manifest, e.errors = man, fieldErrors(verr)
	m.mu.Unlock()
	if !changed {
		return key, nil
	}
	st, err := m.engine.GetState(ctx, key, false)
	if err == nil && State(st.State) == StateDiscovered && verr == nil {
		if err := m.accept(ctx, e, st.Revision, man, nil, "manifest fixed", InitiatorDiscovery); err != nil {
			m.log.Error("validate plugin", "plugin", ref.String(), "err", err)
		}
		m.autoActivate(ctx, e)
	}
	if p, err := m.view(ctx, e); err == nil {
		rep.Changed = append(rep.Changed, p)
	}
	return key, nil
}

func sameManifest(a, b *manifest.Manifest) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Digest == b.Digest
}

// identity reads a manifest's id and version leniently (it may be otherwise invalid), so
// that an invalid manifest is still registered as Discovered, with its errors; a manifest
// without a usable id and version cannot be.
func identity(data []byte) (Ref, bool) {
	var doc struct{ ID, Version any }
	if len(data) > manifest.MaxBytes || json.NewDecoder(bytes.NewReader(data)).Decode(&doc) != nil {
		return Ref{}, false
	}
	id, _ := doc.ID.(string)
	version, _ := doc.Version.(string)
	ref := Ref{id, version}
	if id == "" || version == "" || lifecycle.CheckID(ref.key()) != nil || strings.Contains(id, ":") {
		return Ref{}, false
	}
	return ref, true
}

// register records a new version as Discovered.
func (m *Manager) register(ctx context.Context, ref Ref, path string) (*entry, error) {
	ctx = lifecycle.WithInitiator(ctx, InitiatorDiscovery)
	_, ev, err := m.engine.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: ref.key(), Metadata: map[string]string{"path": path}})
	if err != nil {
		return nil, fmt.Errorf("register plugin %s: %w", ref, err)
	}
	m.fold(&ev)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[ref.key()]
	e.path = path
	return e, nil
}

// autoActivate loads and activates a newly registered version under AutoActivate.
func (m *Manager) autoActivate(ctx context.Context, e *entry) {
	if !m.opts.AutoActivate {
		return
	}
	st, err := m.engine.GetState(ctx, e.ref.key(), false)
	if err != nil || State(st.State) != StateRegistered {
		return
	}
	inputs := map[string]string{"policy": policyAutoActivate}
	if _, err := m.transition(ctx, e, st.Revision, StateInactive, OpLoad, "auto-activate on registration", InitiatorPolicy, inputs); err != nil {
		m.log.Error("auto-activate", "plugin", e.ref.String(), "err", err)
		return
	}
	if _, err := m.activate(ctx, e, "auto-activate on registration", InitiatorPolicy, map[string]string{"policy": policyAutoActivate}); err != nil {
		m.log.Error("auto-activate", "plugin", e.ref.String(), "err", err)
	}
}

// newRepoWatcher starts the file-system notifications of the repository and its packages
// (before the first scan, so that nothing added meanwhile is missed). Without them (an
// error is logged), the periodic rescan still finds changes.
func (m *Manager) newRepoWatcher() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.log.Warn("plugin repository not watched; rescanning periodically", "err", err)
		return nil
	}
	m.watchAll(w)
	return w
}

// watchAll watches the repository and every package folder in it.
func (m *Manager) watchAll(w *fsnotify.Watcher) {
	watched := map[string]bool{}
	for _, p := range w.WatchList() {
		watched[p] = true
	}
	want := map[string]bool{m.repo: true}
	dirents, _ := os.ReadDir(m.repo)
	for _, d := range dirents {
		if d.IsDir() {
			want[filepath.Join(m.repo, d.Name())] = true
		}
	}
	for p := range watched {
		if !want[p] {
			w.Remove(p)
		}
	}
	for p := range want {
		if !watched[p] {
			if err := w.Add(p); err != nil {
				m.log.Warn("watch plugin package", "path", p, "err", err)
			}
		}
	}
}

// watch rescans the repository when it changes (notifications, debounced) and every
// Rescan as a fallback.
func (m *Manager) watch(ctx context.Context, w *fsnotify.Watcher) {
	defer m.workers.Done()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	rescan := time.NewTicker(m.opts.Rescan)
	defer rescan.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			if debounce == nil {
				debounce = time.After(50 * time.Millisecond)
			}
			continue
		case err := <-errs:
			m.log.Warn("plugin repository watch", "err", err)
			continue
		case <-debounce:
		case <-rescan.C:
		}
		debounce = nil
		if w != nil {
			m.watchAll(w) // new package folders, before scanning them
		}
		if _, err := m.Scan(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("scan plugin repository", "err", err)
		}
	}
}
