package admission_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
)

// siteSet is the shipped set with a site stage and an enforcement map.
func siteSet(t *testing.T, enforcement, siteRego string) string {
	t.Helper()
	dir := copyPolicies(t)
	writeFile(t, dir, "pipeline.rego", `package admitd.pipeline

stages := ["reachability", "init_state", "topology", "site"]

permanent_codes := {"ALREADY_INITIALIZED"}

enforcement := `+enforcement+"\n")
	writeFile(t, dir, "site.rego", siteRego)
	return dir
}

const denyingSite = `package admitd.stages.site

default allow := false

deny contains {"code": "SITE_NO", "message": "the site says no"}
`

func load(t *testing.T, dir string) *admission.Engine {
	t.Helper()
	e, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestWarnStageReportsDeniesAsWarnings(t *testing.T) {
	e := load(t, siteSet(t, `{"site": "warn"}`, denyingSite))
	d := e.Evaluate(context.Background(), scenarioInput(t, "allow-2-to-3"))
	s := stage(t, d, "site")
	if !d.Allowed || d.StoppedAt != "" {
		t.Fatalf("a warn-mode stage blocked the pipeline: %+v", d)
	}
	if s.Outcome != admission.OutcomeAllow || s.Enforcement != admission.EnforcementWarn || len(s.Deny) != 0 {
		t.Fatalf("want allow in warn mode with no denies, got %+v", s)
	}
	if len(s.Warn) != 1 || s.Warn[0].Code != "SITE_NO" {
		t.Fatalf("the deny's code must be kept as a warning: %+v", s.Warn)
	}
	if _, ok := d.Grant(); !ok {
		t.Fatal("an allowed decision without a grant")
	}
	if got := e.Enforcement(); got["site"] != admission.EnforcementWarn {
		t.Fatalf("Enforcement() = %v", got)
	}
}

func TestDenyStageStillBlocks(t *testing.T) {
	e := load(t, siteSet(t, `{"site": "deny"}`, denyingSite))
	d := e.Evaluate(context.Background(), scenarioInput(t, "allow-2-to-3"))
	if d.Allowed || d.StoppedAt != "site" || stage(t, d, "site").Enforcement != "" {
		t.Fatalf("a deny-mode stage must block: %+v", d)
	}
}

func TestWarnStageErrorStillDenies(t *testing.T) {
	rego := "package admitd.stages.site\n\nallow if input.nothing == 1\n" // undefined allow
	e := load(t, siteSet(t, `{"site": "warn"}`, rego))
	d := e.Evaluate(context.Background(), scenarioInput(t, "allow-2-to-3"))
	if d.Allowed || stage(t, d, "site").Outcome != admission.OutcomeError {
		t.Fatalf("a stage that cannot be evaluated must fail closed even in warn mode: %+v", d)
	}
}

func TestSafetyStagesAlwaysEnforced(t *testing.T) {
	e := load(t, siteSet(t, `{"init_state": "warn", "site": "deny"}`, denyingSite))
	if len(e.Notes()) != 1 || !strings.Contains(e.Notes()[0], "init_state") {
		t.Fatalf("want a load note about init_state, got %v", e.Notes())
	}
	d := e.Evaluate(context.Background(), scenarioInput(t, "deny-already-initialized"))
	s := stage(t, d, "init_state")
	if d.Allowed || s.Outcome != admission.OutcomeDeny || s.Enforcement != "" {
		t.Fatalf("init_state must stay enforced: %+v", s)
	}
}

func TestBadEnforcementRefused(t *testing.T) {
	for name, m := range map[string]string{
		"unknown action": `{"site": "audit"}`,
		"unknown stage":  `{"site_typo": "warn"}`,
		"not an object":  `["site"]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := admission.Load(context.Background(), admission.DirSource(siteSet(t, m, denyingSite)))
			if !errors.Is(err, admission.ErrLoad) || !strings.Contains(err.Error(), "enforcement") {
				t.Fatalf("want a load error naming enforcement, got %v", err)
			}
		})
	}
}

func TestExplainOnlyWhenAsked(t *testing.T) {
	e := loadShipped(t)
	in := scenarioInput(t, "deny-already-initialized")
	d := e.Evaluate(context.Background(), in)
	for _, s := range d.Stages {
		if len(s.Explain) > 0 {
			t.Fatalf("Evaluate explained %s without being asked", s.Name)
		}
	}
	d = e.EvaluateExplain(context.Background(), in)
	if len(stage(t, d, "topology").Explain) != 0 {
		t.Fatal("a skipped stage was explained")
	}
	reach := strings.Join(stage(t, d, "reachability").Explain, "\n")
	if !strings.Contains(reach, "fired  allow") || !strings.Contains(reach, "failed deny (Raft unreachable)") {
		t.Fatalf("reachability explain lacks its allow or its untriggered denies:\n%s", reach)
	}
	initState := strings.Join(stage(t, d, "init_state").Explain, "\n")
	if !strings.Contains(initState, "fired  deny (Already initialized)  init_state.rego:") {
		t.Fatalf("init_state explain does not name the rule that denied, with file and line:\n%s", initState)
	}
	if d.Allowed || d.StoppedAt != "init_state" {
		t.Fatalf("explaining changed the decision: %+v", d)
	}
}

func TestShippedTestsPassInProcess(t *testing.T) {
	rep, err := admission.RunTests(context.Background(), admission.DirSource("../policies"))
	if err != nil || rep.Passed == 0 || len(rep.Failed) != 0 {
		t.Fatalf("shipped tests: %+v, %v", rep, err)
	}
}

func TestFailingPolicyTestRefusesTheSet(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "site_test.rego", "package admitd.site_test\n\ntest_passes if true\n\ntest_fails if {\n\t1 == 2\n}\n")
	_, err := admission.RunTests(context.Background(), admission.DirSource(dir))
	if !errors.Is(err, admission.ErrTestsFailed) {
		t.Fatalf("want ErrTestsFailed, got %v", err)
	}
	if !strings.Contains(err.Error(), "site_test.rego:5: admitd.site_test.test_fails: FAIL") {
		t.Fatalf("the error does not name the failing test with file and line: %v", err)
	}
	if _, err := admission.LoadWith(context.Background(), admission.DirSource(dir), admission.Options{RunTests: true}); !errors.Is(err, admission.ErrTestsFailed) {
		t.Fatalf("LoadWith accepted a set whose tests fail: %v", err)
	}
	if _, err := admission.LoadWith(context.Background(), admission.DirSource(dir), admission.Options{}); err != nil {
		t.Fatalf("without RunTests the set loads: %v", err)
	}
}

func TestBrokenTestFileRefusesTheSet(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "site_test.rego", "package admitd.site_test\n\ntest_broken if {\n\tcount(1) > 0\n}\n")
	_, err := admission.RunTests(context.Background(), admission.DirSource(dir))
	if !errors.Is(err, admission.ErrLoad) || !strings.Contains(err.Error(), "site_test.rego:4") {
		t.Fatalf("want a compile error naming site_test.rego:4, got %v", err)
	}
}

func TestMaskRule(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "mask.rego", `package system.log

mask contains "/input/site/token"

mask contains {"op": "upsert", "path": "/input/site/owner", "value": "**"} if input.input.site.owner
`)
	e := load(t, dir)
	if !e.HasMask() {
		t.Fatal("HasMask is false with a system.log package")
	}
	ops, err := e.Mask(context.Background(), map[string]any{"input": map[string]any{"site": map[string]any{"owner": "ops"}}})
	if err != nil || len(ops) != 2 || ops[0].Path != "/input/site/owner" || ops[0].Op != "upsert" || ops[1].Op != "remove" {
		t.Fatalf("mask ops %+v, %v", ops, err)
	}
	if loadShipped(t).HasMask() {
		t.Fatal("the shipped set has no mask rule")
	}
}

func TestSiteFactsAttached(t *testing.T) {
	site := map[string]any{"window": "now"}
	e, err := admission.LoadWith(context.Background(), admission.DirSource("../policies"), admission.Options{Site: site})
	if err != nil || e.SiteFacts()["window"] != "now" {
		t.Fatalf("site facts not attached: %v %v", e.SiteFacts(), err)
	}
}
