package plugin

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Pressure is one reading of the host's load, in percent.
//
// From Linux pressure stall information (PSI), CPU and Memory are the "some avg10" values
// of /proc/pressure/cpu and /proc/pressure/memory: the share of the last 10 seconds in
// which at least one task waited for the CPU, or for memory. Where PSI is absent, CPU is
// the one-minute load average per core (100 = one runnable task per core) and Memory is 0.
type Pressure struct {
	CPU, Memory float64
	// Source is "psi" or "loadavg" (or what a test's source says).
	Source string
	// Time is when it was read; zero for no reading.
	Time time.Time
}

// Max is the higher of the two readings: what a threshold is compared with.
func (p Pressure) Max() float64 { return max(p.CPU, p.Memory) }

// IsZero reports whether there is no reading.
func (p Pressure) IsZero() bool { return p.Time.IsZero() && p.Source == "" }

func (p Pressure) String() string {
	if p.IsZero() {
		return "no reading"
	}
	if p.Source == "loadavg" {
		return fmt.Sprintf("cpu %.1f%% (load average per core)", p.CPU)
	}
	return fmt.Sprintf("cpu %.1f%%, memory %.1f%% (%s avg10)", p.CPU, p.Memory, p.Source)
}

// metadata is a reading as an automatic decision's inputs.
func (p Pressure) metadata(threshold float64, into map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	into["pressure"] = p.String()
	into["pressure_cpu"] = strconv.FormatFloat(p.CPU, 'f', 2, 64)
	into["pressure_memory"] = strconv.FormatFloat(p.Memory, 'f', 2, 64)
	into["pressure_source"] = p.Source
	into["pressure_threshold"] = strconv.FormatFloat(threshold, 'f', -1, 64)
	return into
}

// PressureSource reads the host's pressure. HostPressure is the real one; tests replace
// it (Options.Pressure).
type PressureSource interface {
	ReadPressure() (Pressure, error)
}

// PressureFunc adapts a function to a PressureSource.
type PressureFunc func() (Pressure, error)

// ReadPressure calls f.
func (f PressureFunc) ReadPressure() (Pressure, error) { return f() }

// HostPressure reads Linux PSI from /proc/pressure, and falls back to /proc/loadavg per
// core where PSI is absent (an older kernel, or one booted with psi=0).
func HostPressure() PressureSource { return hostPressure{proc: "/proc", cores: runtime.NumCPU()} }

type hostPressure struct {
	proc  string
	cores int
}

func (h hostPressure) ReadPressure() (Pressure, error) {
	now := time.Now()
	cpu, cerr := readPSI(filepath.Join(h.proc, "pressure", "cpu"))
	mem, merr := readPSI(filepath.Join(h.proc, "pressure", "memory"))
	if cerr == nil && merr == nil {
		return Pressure{CPU: cpu, Memory: mem, Source: "psi", Time: now}, nil
	}
	load, err := readLoadavg(filepath.Join(h.proc, "loadavg"))
	if err != nil {
		return Pressure{}, fmt.Errorf("read host pressure: no PSI (%v) and %w", cerr, err)
	}
	return Pressure{CPU: 100 * load / float64(max(h.cores, 1)), Source: "loadavg", Time: now}, nil
}

// readPSI returns the "some avg10" value of a PSI file:
//
//	some avg10=1.53 avg60=0.87 avg300=0.32 total=1234567
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func readPSI(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parsePSI(b)
}

func parsePSI(b []byte) (float64, error) {
	for line := range bytes.Lines(b) {
		fields := strings.Fields(string(line))
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(f, "avg10="); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, fmt.Errorf("PSI avg10 %q: %w", v, err)
				}
				return x, nil
			}
		}
	}
	return 0, fmt.Errorf("no \"some avg10=\" in %q", truncate(string(b), 200))
}

// readLoadavg returns the one-minute load average of /proc/loadavg.
func readLoadavg(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	x, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}
