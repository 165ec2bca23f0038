package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scenarios = "../../testdata/scenarios/"

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// serveArgs is `serve` with flags on free ports and a temporary data dir,
// so a usage test that wrongly got through would not touch the defaults.
func serveArgs(t *testing.T, flags ...string) []string {
	dir := t.TempDir()
	return append([]string{"serve", "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--data-dir", dir, "--join-timeout", "1s"}, flags...)
}

func TestEvalExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"allowed", []string{"eval", "--facts", scenarios + "allow-2-to-3/facts.json"}, exitOK},
		{"denied", []string{"eval", "--facts", scenarios + "deny-already-initialized/facts.json"}, exitDenied},
		{"malformed", []string{"eval", "--facts", scenarios + "error-not-json/facts.json"}, exitError},
		{"unknown schema", []string{"eval", "--facts", scenarios + "error-unknown-schema/facts.json"}, exitError},
		{"missing file", []string{"eval", "--facts", scenarios + "nothing-here.json"}, exitError},
		{"no facts flag", []string{"eval"}, exitUsage},
		{"unknown flag", []string{"eval", "--bogus"}, exitUsage},
		{"bad output", []string{"eval", "--facts", "-", "-o", "yaml"}, exitUsage},
		{"extra argument", []string{"eval", "--facts", "-", "surplus"}, exitUsage},
		{"policies not a dir", []string{"eval", "--policies", "main.go", "--facts", scenarios + "allow-2-to-3/facts.json"}, exitError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", c.args...)
			if code != c.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.want, out, errOut)
			}
			if c.want == exitError && !strings.Contains(errOut, "admitd:") {
				t.Errorf("no error message on stderr: %q", errOut)
			}
		})
	}
}

func TestEvalFromStdinAsJSON(t *testing.T) {
	doc, err := os.ReadFile(scenarios + "order-unreachable-and-initialized/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, string(doc), "eval", "--facts", "-", "-o", "json")
	var d struct {
		Allowed bool `json:"allowed"`
		Stages  []struct {
			Name, Outcome string
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if code != exitDenied || d.Allowed || len(d.Stages) != 3 || d.Stages[0].Outcome != "deny" || d.Stages[1].Outcome != "skipped" {
		t.Fatalf("exit %d decision %+v", code, d)
	}
}

func TestEvalTableNamesStoppingStage(t *testing.T) {
	code, out, _ := runCmd(t, "", "eval", "--facts", scenarios+"deny-node-id-mismatch/facts.json")
	if code != exitDenied {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"DENIED", "stopped at stage init_state", "NODE_ID_MISMATCH", "topology      skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalBrokenPolicySetNeverAllows(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"pipeline.rego", "reachability.rego", "init_state.rego", "topology.rego", "capabilities.json"} {
		b, err := os.ReadFile(filepath.Join("../../policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package admitd.stages.broken\n\nallow if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "eval", "--policies", dir, "--facts", scenarios+"allow-2-to-3/facts.json")
	if code != exitError || strings.Contains(out, "ALLOWED") || !strings.Contains(errOut, "broken.rego:") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestVersionNamesPolicySet(t *testing.T) {
	code, out, _ := runCmd(t, "", "version", "--policies", "../../policies")
	if code != exitOK || !strings.Contains(out, "policy revision: sha256:") || !strings.Contains(out, "policies: ../../policies") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestJoinAndStatusUsage(t *testing.T) {
	for _, args := range [][]string{
		{"join", "--id", "n4"},
		{"join", "--server", "ftp://x", "--id", "n4", "--raft-addr", "127.0.0.1:1", "--api-url", "http://127.0.0.1:2"},
		{"join", "--server", "http://127.0.0.1:1", "--id", "", "--raft-addr", "127.0.0.1:1", "--api-url", "http://127.0.0.1:2"},
		{"status", "--server", ""},
		serveArgs(t, "--bootstrap", "--join", "http://127.0.0.1:1"),
	} {
		if code, _, errOut := runCmd(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
}

func TestJoinUnreachableServerIsError(t *testing.T) {
	code, _, errOut := runCmd(t, "", "join", "--server", "http://127.0.0.1:1", "--id", "n4",
		"--raft-addr", "127.0.0.1:2", "--api-url", "http://127.0.0.1:3", "--timeout", "2s")
	if code != exitError || errOut == "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
