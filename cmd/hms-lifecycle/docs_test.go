package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// docFiles are the documents whose hms-lifecycle command lines are checked.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob("../../docs/*.md")
	paths = append(paths, "../../README.md", "../../CONTRIBUTING.md")
	docs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[strings.TrimPrefix(p, "../../")] = string(b)
	}
	return docs
}

// commandLines are the hms-lifecycle command lines of a document: in code blocks (a line
// indented more than the one before it continues it) and in inline code.
func commandLines(doc string) []string {
	var lines []string
	inBlock := false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			code, _, _ := strings.Cut(l, "# ")
			if i := strings.Index(code, "hms-lifecycle "); i >= 0 && !strings.Contains(code[:i], "/") {
				lines = append(lines, code[i:])
			} else if len(lines) > 0 && strings.HasPrefix(l, "    ") && strings.Contains(strings.TrimSpace(code), "--") {
				lines[len(lines)-1] += " " + code
			}
			continue
		}
	}
	for _, m := range regexp.MustCompile("`(hms-lifecycle [^`]+)`").FindAllStringSubmatch(doc, -1) {
		lines = append(lines, m[1])
	}
	return lines
}

// TestDocsCommandsExist: every command and flag the docs show exists.
func TestDocsCommandsExist(t *testing.T) {
	root := newRoot()
	flagRE := regexp.MustCompile(`(?:^|[\s\[(|])--([a-z][a-z0-9-]*)`)
	checked := 0
	for name, doc := range docFiles(t) {
		for _, line := range commandLines(doc) {
			words := strings.Fields(strings.TrimPrefix(line, "hms-lifecycle "))
			cmds := []*cobra.Command{root}
			for i := 0; i < len(words); i++ {
				w := words[i]
				if strings.HasPrefix(w, "-") {
					if !strings.Contains(w, "=") && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
						if f := cmds[0].Flags().Lookup(strings.TrimLeft(w, "-")); f == nil || f.Value.Type() != "bool" {
							i++ // the flag's value
						}
					}
					continue
				}
				var next []*cobra.Command
				for _, alt := range strings.Split(w, "|") {
					for _, c := range cmds {
						for _, sub := range c.Commands() {
							if sub.Name() == alt {
								next = append(next, sub)
							}
						}
					}
				}
				if len(next) == 0 {
					if len(cmds[0].Commands()) > 0 && cmds[0] != root && regexp.MustCompile(`^[a-z]+$`).MatchString(w) {
						t.Errorf("%s: %q: %s has no command %q", name, line, cmds[0].CommandPath(), w)
					}
					break
				}
				cmds = next
			}
			if cmds[0] == root && len(words) > 0 && !strings.HasPrefix(words[0], "-") {
				t.Errorf("%s: %q: no command %q", name, line, words[0])
				continue
			}
			for _, m := range flagRE.FindAllStringSubmatch(line, -1) {
				for _, c := range cmds {
					c.InitDefaultHelpFlag()
					if c.Flags().Lookup(m[1]) == nil && c.InheritedFlags().Lookup(m[1]) == nil && c.PersistentFlags().Lookup(m[1]) == nil {
						t.Errorf("%s: %q: %s has no flag --%s", name, line, c.CommandPath(), m[1])
					}
				}
			}
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("checked only %d command lines: is the parser broken?", checked)
	}
}

// TestDocsListEveryCommand: docs/cli.md's synopsis shows every command, and the README's
// list of commands names every top-level one.
func TestDocsListEveryCommand(t *testing.T) {
	docs := docFiles(t)
	cli := docs["docs/cli.md"]
	synopsis := cli[:strings.Index(cli, "\n```\n\n")]
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || c.Name() == "completion" {
				continue
			}
			path := strings.TrimPrefix(sub.CommandPath(), "hms-lifecycle ")
			parent, name, _ := strings.Cut(path, " ")
			if name == "" {
				name, parent = parent, ""
			}
			re := regexp.MustCompile(`(?m)^hms-lifecycle ` + regexp.QuoteMeta(strings.TrimSpace(parent+" ")) + ` ?([a-z|]+\|)?` + regexp.QuoteMeta(name) + `(\||\s|$)`)
			if len(sub.Commands()) == 0 && !re.MatchString(synopsis) {
				t.Errorf("docs/cli.md's synopsis lacks %s", sub.CommandPath())
			}
			if c.Parent() == nil && !strings.Contains(docs["README.md"], "`"+sub.Name()+"`") {
				t.Errorf("README.md does not name the command %s", sub.Name())
			}
			walk(sub)
		}
	}
	walk(newRoot())
}

// TestDocsPluginExample: the complete example manifest of docs/plugins.md validates, and
// with Python 3 the server runs it as the docs say.
func TestDocsPluginExample(t *testing.T) {
	doc := docFiles(t)["docs/plugins.md"]
	i := strings.Index(doc, "### A complete example")
	if i < 0 {
		t.Fatal("docs/plugins.md has no complete example")
	}
	rest := doc[i:]
	start := strings.Index(rest, "```json\n") + len("```json\n")
	example := rest[start : start+strings.Index(rest[start:], "```")]
	v, err := manifest.NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v.Validate([]byte(example))
	if err != nil {
		t.Fatalf("the example manifest: %v", err)
	}
	if m.Runtime == nil || m.Runtime.Health == nil {
		t.Fatal("the example manifest has no runtime block with a health check")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 to run the example plugin with")
	}
	repo := t.TempDir()
	pkg := filepath.Join(repo, "echo-1.0.0")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, manifest.FileName), []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := command(t, "plugins", "validate", pkg); code != exitOK || !strings.Contains(out, "is valid: AOS-Echo 1.0.0 (L3-Capability)") {
		t.Fatalf("validate: exit %d %s", code, out)
	}
	s := startServer(t, "--store", "memory", "--plugin-repo", repo)
	for _, st := range []step{
		{[]string{"plugins", "list"}, exitOK, "registered"},
		{[]string{"plugins", "load", "AOS-Echo", "1.0.0"}, exitOK, "inactive (since"},
		{[]string{"plugins", "activate", "AOS-Echo", "1.0.0"}, exitOK, " active (since"},
		{[]string{"plugins", "resolve", "AOS-Echo", "^1"}, exitOK, "AOS-Echo 1.0.0  127.0.0.1:"},
		{[]string{"plugins", "deactivate", "AOS-Echo", "1.0.0"}, exitOK, "inactive (since"},
	} {
		out, code := cli(t, s.url, st.args...)
		st.check(t, out, code)
	}
}

// TestDocsStayInTheRepository: the documents link only to files of the repository.
func TestDocsStayInTheRepository(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	link := regexp.MustCompile(`\]\(([^)#\s]+)[^)]*\)|` + "`" + `(\.\./[^` + "`" + `\s]+)` + "`")
	for name, doc := range docFiles(t) {
		for _, m := range link.FindAllStringSubmatch(doc, -1) {
			target := m[1] + m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(repo, filepath.Dir(name), target)
			if rel, err := filepath.Rel(repo, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s points outside the repository: %s", name, target)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to %s, which does not exist", name, target)
			}
		}
	}
}
