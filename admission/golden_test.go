package admission_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

var update = flag.Bool("update", false, "rewrite testdata/scenarios/*/expected.json")

const scenarioDir = "../testdata/scenarios"

// summary is the part of a decision the golden files pin down.
type summary struct {
	Error     string         `json:"error,omitempty"`
	Allowed   bool           `json:"allowed"`
	Permanent bool           `json:"permanent"`
	StoppedAt string         `json:"stopped_at,omitempty"`
	Stages    []stageSummary `json:"stages,omitempty"`
}

type stageSummary struct {
	Name    string            `json:"name"`
	Outcome admission.Outcome `json:"outcome"`
	Deny    []string          `json:"deny,omitempty"`
	Warn    []string          `json:"warn,omitempty"`
}

func summarize(d *admission.Decision) summary {
	s := summary{Allowed: d.Allowed, Permanent: d.Permanent, StoppedAt: d.StoppedAt}
	for _, st := range d.Stages {
		ss := stageSummary{Name: st.Name, Outcome: st.Outcome}
		for _, v := range st.Deny {
			ss.Deny = append(ss.Deny, v.Code)
		}
		for _, v := range st.Warn {
			ss.Warn = append(ss.Warn, v.Code)
		}
		s.Stages = append(s.Stages, ss)
	}
	return s
}

func loadShipped(t testing.TB) *admission.Engine {
	t.Helper()
	e, err := admission.Load(context.Background(), admission.DirSource("../policies"))
	if err != nil {
		t.Fatalf("load shipped policies: %v", err)
	}
	return e
}

func evalFile(t *testing.T, e *admission.Engine, path string) summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := facts.Decode(f)
	if err != nil {
		return summary{Error: err.Error()}
	}
	in, err := admission.NewInput(dec)
	if err != nil {
		return summary{Error: err.Error()}
	}
	return summarize(e.Evaluate(context.Background(), in))
}

func TestGoldenScenarios(t *testing.T) {
	e := loadShipped(t)
	dirs, err := filepath.Glob(filepath.Join(scenarioDir, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios in %s: %v", scenarioDir, err)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			got := evalFile(t, e, filepath.Join(dir, "facts.json"))
			checkNameAgrees(t, name, got)
			compareGolden(t, filepath.Join(dir, "expected.json"), got)
		})
	}
}

// checkNameAgrees guards the golden files themselves: a scenario's name
// says what kind of result it must have, whatever expected.json holds.
func checkNameAgrees(t *testing.T, name string, got summary) {
	t.Helper()
	switch {
	case strings.HasPrefix(name, "allow-"):
		if !got.Allowed || got.Error != "" {
			t.Errorf("%s must be allowed, got %+v", name, got)
		}
	case strings.HasPrefix(name, "error-"):
		if got.Error == "" || got.Allowed {
			t.Errorf("%s must be a decoding error, got %+v", name, got)
		}
	default:
		if got.Allowed || got.Error != "" || got.StoppedAt == "" {
			t.Errorf("%s must be denied at a stage, got %+v", name, got)
		}
	}
}

func compareGolden(t *testing.T, path string, got summary) {
	t.Helper()
	gotJSON, _ := json.MarshalIndent(got, "", "  ")
	gotJSON = append(gotJSON, '\n')
	if *update {
		if err := os.WriteFile(path, gotJSON, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./admission -run Golden -update)", err)
	}
	if string(want) != string(gotJSON) {
		t.Errorf("decision differs from %s\n--- want\n%s--- got\n%s", path, want, gotJSON)
	}
}

// decoderRefuses lists codes whose facts the strict decoder rejects before
// any policy runs; the error-* scenarios and the Rego tests cover them.
var decoderRefuses = map[string]bool{"CANDIDATE_MALFORMED": true, "PHASE_MISMATCH": true}

var codeRE = regexp.MustCompile(`"code":\s*"([A-Z][A-Z0-9_]*)"`)

// TestGoldenCoverEveryCode fails when a deny or warn code of the shipped
// policies has no scenario that produces it.
func TestGoldenCoverEveryCode(t *testing.T) {
	defined := map[string]bool{}
	files, _ := filepath.Glob("../policies/*.rego")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRE.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
	}
	if len(defined) == 0 {
		t.Fatal("found no codes in the shipped policies")
	}
	seen := map[string]bool{}
	expected, _ := filepath.Glob(filepath.Join(scenarioDir, "*", "expected.json"))
	for _, f := range expected {
		b, _ := os.ReadFile(f)
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, st := range s.Stages {
			for _, c := range append(st.Deny, st.Warn...) {
				seen[c] = true
			}
		}
	}
	var missing []string
	for c := range defined {
		if !seen[c] && !decoderRefuses[c] {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("codes without a golden scenario: %v", missing)
	}
}
