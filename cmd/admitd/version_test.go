package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/version"
)

func TestVersionText(t *testing.T) {
	code, out, errOut := runCmd(t, "", "version", "--policies", "../../policies")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{"admitd " + version.Version, "module: ", "commit: ", "go: " + runtime.Version(), "platform: " + runtime.GOOS + "/" + runtime.GOARCH, "policies: ../../policies", "policy revision: sha256:"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d is %q, want it to start with %q", i+1, lines[i], w)
		}
	}
}

// A policy set that does not load is reported and the command still
// succeeds: version answers which binary this is whatever the directory.
func TestVersionPoliciesNotLoadable(t *testing.T) {
	code, out, _ := runCmd(t, "", "version", "--policies", "main.go")
	if code != exitOK || !strings.Contains(out, "policies: not loadable: ") || !strings.Contains(out, "go: "+runtime.Version()) {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// The root --version prints the build lines of `admitd version`, and no
// policy set is loaded for it.
func TestRootVersionFlag(t *testing.T) {
	_, full, _ := runCmd(t, "", "version", "--policies", "../../policies")
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		code, out, errOut := runCmd(t, "", args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
		}
		if out != buildText(version.Info())+"\n" || !strings.HasPrefix(full, out) {
			t.Errorf("%v printed %q; admitd version printed %q", args, out, full)
		}
		if strings.Contains(out, "polic") {
			t.Errorf("%v names a policy set: %q", args, out)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, errOut := runCmd(t, "", "version", "--policies", "../../policies", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	// Decoded strictly: a field renamed or added shows here.
	var rep struct {
		Version    string `json:"version"`
		Module     string `json:"module"`
		Commit     string `json:"commit"`
		Modified   bool   `json:"modified"`
		CommitTime string `json:"commit_time"`
		GoVersion  string `json:"go_version"`
		Platform   string `json:"platform"`
		Policies   struct {
			Source   string `json:"source"`
			Revision string `json:"revision"`
			Error    string `json:"error"`
		} `json:"policies"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value:\n%s", out)
	}
	if rep.Version != version.Version || rep.GoVersion != runtime.Version() || rep.Platform != runtime.GOOS+"/"+runtime.GOARCH || rep.Module == "" {
		t.Errorf("build %+v", rep)
	}
	if rep.Policies.Source != "../../policies" || !strings.HasPrefix(rep.Policies.Revision, "sha256:") || rep.Policies.Error != "" {
		t.Errorf("policies %+v", rep.Policies)
	}

	code, out, _ = runCmd(t, "", "version", "--policies", "main.go", "-o", "json")
	var bad versionReport
	if err := json.Unmarshal([]byte(out), &bad); code != exitOK || err != nil || bad.Policies.Error == "" || bad.Policies.Revision != "" {
		t.Errorf("unloadable set: exit %d, %v: %s", code, err, out)
	}
}

func TestVersionUsage(t *testing.T) {
	for _, args := range [][]string{{"version", "-o", "yaml"}, {"version", "surplus"}, {"version", "--bogus"}} {
		if code, _, errOut := runCmd(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
}

// Built from a checkout with local changes, the commit says so; a test
// binary carries no VCS settings, so this is checked on buildText.
func TestBuildTextCommit(t *testing.T) {
	b := version.Build{Version: "1.2.3", Module: "v1.2.3", Commit: "0123abcd", Modified: true, CommitAt: "2026-12-02T00:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	want := "admitd 1.2.3\nmodule: v1.2.3\ncommit: 0123abcd-dirty (2026-12-02T00:00:00Z)\ngo: go1.26.8\nplatform: linux/amd64"
	if got := buildText(b); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	b.Modified = false
	if got := buildText(b); !strings.Contains(got, "commit: 0123abcd (") {
		t.Errorf("clean checkout: %s", got)
	}
	if got := buildText(version.Build{}); !strings.Contains(got, "commit: unknown") {
		t.Errorf("no commit: %s", got)
	}
}
