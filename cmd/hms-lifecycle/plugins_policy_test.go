package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLIPluginPolicies: the policy flags of serve, and what plugins get and list show of
// the policies: a failover after a crash, the host's real pressure reading.
func TestCLIPluginPolicies(t *testing.T) {
	bad := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--store", "memory", "--plugin-failover-rate", "often")
	if out, err := bad.CombinedOutput(); bad.ProcessState == nil || bad.ProcessState.ExitCode() != exitUsage ||
		!strings.Contains(string(out), `rate "often": want N/DURATION`) {
		t.Fatalf("a bad --plugin-failover-rate: %v %s", err, out)
	}
	repo := t.TempDir()
	writeManifest(t, filepath.Join(repo, "echo-1.0.0"), pluginManifest("1.0.0", true))
	writeManifest(t, filepath.Join(repo, "echo-1.1.0"), pluginManifest("1.1.0", true))
	s := startServer(t, "--store", "memory", "--plugin-repo", repo, "--plugin-failover", "--plugin-failover-constraint", "^1",
		"--plugin-failover-rate", "2/1m", "--plugin-pressure-threshold", "1000", "--plugin-pressure-idle-timeout", "1h")
	for _, args := range [][]string{{"plugins", "load", "AOS-Echo", "1.0.0"}, {"plugins", "load", "AOS-Echo", "1.1.0"}} {
		if out, code := cli(t, s.url, args...); code != exitOK {
			t.Fatalf("%v: exit %d %s", args, code, out)
		}
	}
	out, code := cli(t, s.url, "plugins", "activate", "AOS-Echo", "1.1.0")
	endpoint := regexp.MustCompile(`endpoint +(127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if code != exitOK || endpoint == nil || !regexp.MustCompile(`pressure +cpu `).MatchString(out) || !strings.Contains(out, "threshold 1000%") {
		t.Fatalf("activate: exit %d %s", code, out)
	}
	if res, err := http.Get("http://" + endpoint[1] + "/crash"); err == nil {
		res.Body.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ = cli(t, s.url, "plugins", "get", "AOS-Echo", "1.1.0")
		if regexp.MustCompile(`failover +to AOS-Echo 1\.0\.0 \(by system:plugin-policy\)`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failover shown: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ = cli(t, s.url, "plugins", "list")
	if !strings.Contains(out, "pressure: cpu ") || !regexp.MustCompile(`(?i)1\.1\.0 +failed .*failed over to 1\.0\.0`).MatchString(out) {
		t.Fatalf("list: %s", out)
	}
	out, _ = cli(t, s.url, "plugins", "resolve", "AOS-Echo", "^1")
	if !strings.Contains(out, "AOS-Echo 1.0.0  127.0.0.1:") {
		t.Fatalf("resolve after the failover: %s", out)
	}
	out, _ = cli(t, s.url, "plugins", "history", "AOS-Echo", "1.0.0")
	if !strings.Contains(out, "system:plugin-policy") {
		t.Fatalf("history: %s", out)
	}
	out, _ = cli(t, s.url, "plugins", "deactivate", "AOS-Echo", "1.0.0", "--reason", "maintenance")
	if !regexp.MustCompile(`deactivated +`).MatchString(out) || !strings.Contains(out, ": maintenance") {
		t.Fatalf("deactivate: %s", out)
	}
}
