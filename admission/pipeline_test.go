package admission

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/admitd/admitd/facts"
)

func loadDir(t *testing.T, dir string) *Engine {
	t.Helper()
	e, err := Load(context.Background(), DirSource(dir))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// withoutTimes drops what differs between two evaluations of one input.
func withoutTimes(rs []StageResult) []StageResult {
	out := make([]StageResult, len(rs))
	for i, r := range rs {
		r.DurationMS, r.DurationShared = nil, false
		out[i] = r
	}
	return out
}

// TestCombinedMatchesStageByStage checks, on every golden scenario, that
// the one combined evaluation gives each stage exactly the result the
// stage-by-stage fallback gives it.
func TestCombinedMatchesStageByStage(t *testing.T) {
	e := loadDir(t, "../policies")
	files, _ := filepath.Glob("../testdata/scenarios/*/facts.json")
	ctx := context.Background()
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := facts.DecodeBytes(raw)
		if err != nil {
			continue // error-* scenarios never reach evaluation
		}
		in, err := NewInput(d)
		if err != nil {
			t.Fatal(err)
		}
		p := e.pipelines[phaseOf(d.Doc)]
		if p == nil {
			t.Fatalf("%s: no pipeline for phase %q", f, phaseOf(d.Doc))
		}
		all := p.evalAll(ctx, in)
		if all == nil {
			t.Fatalf("%s: the combined evaluation failed", f)
		}
		var combined, alone []StageResult
		for i, name := range p.stages {
			combined = append(combined, all.stage(i, name, p.present[name]))
			alone = append(alone, p.evalStage(ctx, name, in))
		}
		if !reflect.DeepEqual(withoutTimes(combined), withoutTimes(alone)) {
			t.Errorf("%s:\ncombined %+v\n   alone %+v", f, combined, alone)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no scenario checked")
	}
}

// TestLaterStageErrorAfterDeny: when a stage after the first deny fails to
// evaluate, the combined query fails as a whole; the decision must still be
// the earlier deny, with the failing stage skipped, never an error.
func TestLaterStageErrorAfterDeny(t *testing.T) {
	dir := t.TempDir()
	files, _ := filepath.Glob("../policies/*")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") || !(strings.HasSuffix(f, ".rego") || strings.HasSuffix(f, ".json")) {
			continue
		}
		b, _ := os.ReadFile(f)
		if filepath.Base(f) == "pipeline.rego" {
			b = []byte(strings.Replace(string(b), `"topology"]`, `"topology", "site"]`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	site := "package admitd.stages.site\n\ndefault allow := false\n\nallow if to_number(\"not a number\") > 0\n"
	if err := os.WriteFile(filepath.Join(dir, "site.rego"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	e := loadDir(t, dir)
	if len(e.stages) != 4 {
		t.Fatalf("site stage not appended: %v", e.stages)
	}
	raw, _ := os.ReadFile("../testdata/scenarios/deny-already-initialized/facts.json")
	d, err := facts.DecodeBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := NewInput(d)
	if e.pipelines[facts.PhaseAdmit].evalAll(context.Background(), in) != nil {
		t.Fatal("the combined evaluation should fail on the site stage's error")
	}
	dec := e.Evaluate(context.Background(), in)
	if dec.Allowed || dec.StoppedAt != "init_state" {
		t.Fatalf("want a deny at init_state, got stopped at %q: %s", dec.StoppedAt, dec.Reason)
	}
	last := dec.Stages[len(dec.Stages)-1]
	if last.Name != "site" || last.Outcome != OutcomeSkipped || last.DurationMS != nil {
		t.Fatalf("site: want skipped, got %+v", last)
	}
	// Evaluated stage by stage, each has its own duration.
	for _, s := range dec.Stages[:2] {
		if s.DurationMS == nil || s.DurationShared {
			t.Errorf("%s: want its own duration, got %+v", s.Name, s)
		}
	}
}

// TestSharedDuration: stages decided by the combined evaluation carry its
// duration, marked shared; skipped stages carry none.
func TestSharedDuration(t *testing.T) {
	e := loadDir(t, "../policies")
	for _, name := range []string{"allow-2-to-3", "deny-raft-unreachable"} {
		raw, _ := os.ReadFile("../testdata/scenarios/" + name + "/facts.json")
		d, err := facts.DecodeBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		in, _ := NewInput(d)
		dec := e.Evaluate(context.Background(), in)
		for _, s := range dec.Stages {
			switch {
			case s.Outcome == OutcomeSkipped && (s.DurationMS != nil || s.DurationShared):
				t.Errorf("%s/%s: skipped with a duration", name, s.Name)
			case s.Outcome != OutcomeSkipped && (s.DurationMS == nil || !s.DurationShared):
				t.Errorf("%s/%s: want a shared duration, got %+v", name, s.Name, s)
			}
		}
	}
}
