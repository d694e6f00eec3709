package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeProc(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPluginPressureSources: PSI's "some avg10" of cpu and memory, and the load average
// per core where PSI is absent or unreadable.
func TestPluginPressureSources(t *testing.T) {
	dir := t.TempDir()
	writeProc(t, dir, map[string]string{
		"pressure/cpu":    "some avg10=72.50 avg60=40.00 avg300=10.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"pressure/memory": "some avg10=3.25 avg60=1.00 avg300=0.50 total=9\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=0\n",
		"loadavg":         "6.00 5.00 4.00 3/200 4711\n",
	})
	p, err := hostPressure{proc: dir, cores: 4}.ReadPressure()
	if err != nil || p.Source != "psi" || p.CPU != 72.5 || p.Memory != 3.25 || p.Max() != 72.5 || p.Time.IsZero() {
		t.Fatalf("PSI: %+v %v", p, err)
	}
	if s := p.String(); s != "cpu 72.5%, memory 3.2% (psi avg10)" {
		t.Fatalf("PSI reading as text: %q", s)
	}
	// No PSI: the one-minute load average per core, as a percentage.
	os.RemoveAll(filepath.Join(dir, "pressure"))
	p, err = hostPressure{proc: dir, cores: 4}.ReadPressure()
	if err != nil || p.Source != "loadavg" || p.CPU != 150 || p.Memory != 0 {
		t.Fatalf("load average: %+v %v", p, err)
	}
	if s := p.String(); s != "cpu 150.0% (load average per core)" {
		t.Fatalf("load reading as text: %q", s)
	}
	// PSI present but malformed (or psi=0: unreadable): the load average too.
	writeProc(t, dir, map[string]string{"pressure/cpu": "garbage\n", "pressure/memory": "some avg10=x\n"})
	if p, err = (hostPressure{proc: dir, cores: 2}).ReadPressure(); err != nil || p.Source != "loadavg" || p.CPU != 300 {
		t.Fatalf("malformed PSI: %+v %v", p, err)
	}
	// Neither: an error saying so.
	os.Remove(filepath.Join(dir, "loadavg"))
	if _, err = (hostPressure{proc: dir, cores: 2}).ReadPressure(); err == nil || !strings.Contains(err.Error(), "no PSI") {
		t.Fatalf("no source: %v", err)
	}
}

// TestPluginPressureOfThisHost reads the real /proc/pressure files where they exist.
func TestPluginPressureOfThisHost(t *testing.T) {
	p, err := HostPressure().ReadPressure()
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := os.ReadFile("/proc/pressure/cpu"); perr == nil {
		if p.Source != "psi" {
			t.Fatalf("/proc/pressure/cpu is readable, yet the reading is from %s: %+v", p.Source, p)
		}
		if p.CPU < 0 || p.CPU > 100 || p.Memory < 0 || p.Memory > 100 {
			t.Fatalf("PSI percentages out of range: %+v", p)
		}
	} else {
		t.Logf("no PSI here (%v): %+v", perr, p)
		if p.Source != "loadavg" || p.CPU < 0 {
			t.Fatalf("without PSI: %+v", p)
		}
	}
	if time.Since(p.Time) > time.Minute {
		t.Fatalf("reading time %v", p.Time)
	}
	t.Logf("this host: %s", p)
}

func TestPluginRate(t *testing.T) {
	r, err := ParseRate("3/10m")
	if err != nil || r != (Rate{3, 10 * time.Minute}) || r.String() != "3/10m0s" {
		t.Fatalf("3/10m: %+v %v", r, err)
	}
	for _, bad := range []string{"3", "0/1m", "x/1m", "3/-1m", "3/soon"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
