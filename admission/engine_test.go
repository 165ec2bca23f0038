package admission_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/policies"
)

// copyPolicies copies the shipped set into a temp dir for a test to alter.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scenarioInput(t testing.TB, name string) *admission.Input {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir, name, "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := facts.DecodeBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	in, err := admission.NewInput(d)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func evalWith(t *testing.T, dir, scenario string) *admission.Decision {
	t.Helper()
	e, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return e.Evaluate(context.Background(), scenarioInput(t, scenario))
}

func stage(t *testing.T, d *admission.Decision, name string) admission.StageResult {
	t.Helper()
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %s in %+v", name, d.Stages)
	return admission.StageResult{}
}

func TestBrokenPolicyFileNamesFileAndLine(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "site.rego", "package admitd.stages.site\n\nallow if {\n  input.x ==\n}\n")
	_, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err == nil || !errors.Is(err, admission.ErrLoad) {
		t.Fatalf("want a load error, got %v", err)
	}
	if !strings.Contains(err.Error(), "site.rego:") {
		t.Errorf("error does not name the file: %v", err)
	}
}

func TestTypeErrorNamesFileAndLine(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "site.rego", "package admitd.stages.site\n\nallow if {\n  count(1) > 0\n}\n")
	_, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err == nil || !strings.Contains(err.Error(), "site.rego:4") {
		t.Fatalf("want an error naming site.rego:4, got %v", err)
	}
}

func TestForbiddenBuiltinRefused(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, dir, "site.rego", `package admitd.stages.site

allow if http.send({"method": "GET", "url": "http://127.0.0.1:1"}).status_code == 200
`)
	_, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err == nil || !strings.Contains(err.Error(), "http.send") {
		t.Fatalf("want http.send refused by capabilities, got %v", err)
	}
}

func TestPipelineMustOpenWithSafetyStages(t *testing.T) {
	for name, stages := range map[string]string{
		"empty":     `[]`,
		"reordered": `["init_state", "reachability", "topology"]`,
		"missing":   `["reachability", "topology"]`,
		"twice":     `["reachability", "init_state", "topology", "topology"]`,
		"not-array": `"reachability"`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyPolicies(t)
			writeFile(t, dir, "pipeline.rego", "package admitd.pipeline\n\nstages := "+stages+"\n")
			if _, err := admission.Load(context.Background(), admission.DirSource(dir)); err == nil {
				t.Fatal("pipeline accepted")
			}
		})
	}
}

func TestNoModulesRefused(t *testing.T) {
	_, err := admission.Load(context.Background(), admission.DirSource(t.TempDir()))
	if err == nil {
		t.Fatal("an empty directory loaded")
	}
}

func withSiteStage(t *testing.T, rego string) string {
	t.Helper()
	dir := copyPolicies(t)
	writeFile(t, dir, "pipeline.rego", "package admitd.pipeline\n\nstages := [\"reachability\", \"init_state\", \"topology\", \"site\"]\n")
	if rego != "" {
		writeFile(t, dir, "site.rego", rego)
	}
	return dir
}

func TestStageWithoutPackageIsStageError(t *testing.T) {
	d := evalWith(t, withSiteStage(t, ""), "allow-2-to-3")
	assertStageError(t, d, "site")
}

func TestUndefinedAllowIsStageError(t *testing.T) {
	d := evalWith(t, withSiteStage(t, "package admitd.stages.site\n\nallow if input.nothing == 1\n"), "allow-2-to-3")
	assertStageError(t, d, "site")
}

func TestEvaluationErrorIsStageError(t *testing.T) {
	rego := "package admitd.stages.site\n\ndefault allow := false\n\nallow if to_number(\"not a number\") > 0\n"
	d := evalWith(t, withSiteStage(t, rego), "allow-2-to-3")
	assertStageError(t, d, "site")
}

func TestMalformedDenyIsStageError(t *testing.T) {
	rego := "package admitd.stages.site\n\ndefault allow := true\n\ndeny contains \"just a string\"\n"
	d := evalWith(t, withSiteStage(t, rego), "allow-2-to-3")
	assertStageError(t, d, "site")
}

func TestAllowFalseWithoutReasonDenies(t *testing.T) {
	d := evalWith(t, withSiteStage(t, "package admitd.stages.site\n\ndefault allow := false\n"), "allow-2-to-3")
	s := stage(t, d, "site")
	if d.Allowed || s.Outcome != admission.OutcomeDeny || s.Deny[0].Code != "NOT_ALLOWED" {
		t.Fatalf("want NOT_ALLOWED deny, got %+v", s)
	}
}

func TestSiteStageAllowAndDenyTogetherDenies(t *testing.T) {
	rego := "package admitd.stages.site\n\ndefault allow := true\n\ndeny contains {\"code\": \"SITE_NO\", \"message\": \"no\"}\n"
	d := evalWith(t, withSiteStage(t, rego), "allow-2-to-3")
	if d.Allowed || stage(t, d, "site").Outcome != admission.OutcomeDeny {
		t.Fatalf("allow with a deny must deny: %+v", d)
	}
}

func assertStageError(t *testing.T, d *admission.Decision, name string) {
	t.Helper()
	s := stage(t, d, name)
	if d.Allowed || s.Outcome != admission.OutcomeError || len(s.Deny) != 1 || s.Deny[0].Code != admission.CodeStageError {
		t.Fatalf("want STAGE_ERROR at %s, got allowed=%v %+v", name, d.Allowed, s)
	}
	if _, ok := d.Grant(); ok {
		t.Fatal("a stage error produced a grant")
	}
	if !strings.Contains(d.Reason, name+": STAGE_ERROR") {
		t.Errorf("reason does not name the stage: %q", d.Reason)
	}
}

func TestStageOrderStopsAtFirstFailure(t *testing.T) {
	e := loadShipped(t)
	d := e.Evaluate(context.Background(), scenarioInput(t, "order-unreachable-and-initialized"))
	if d.Allowed || d.StoppedAt != "reachability" {
		t.Fatalf("want a deny at reachability, got %+v", d)
	}
	if !strings.HasPrefix(d.Reason, "reachability: ") {
		t.Errorf("reason %q does not name reachability", d.Reason)
	}
	for _, name := range []string{"init_state", "topology"} {
		if s := stage(t, d, name); s.Outcome != admission.OutcomeSkipped || s.DurationMS != nil {
			t.Errorf("%s: want skipped without timing, got %+v", name, s)
		}
	}
}

func TestGrantOnlyForAllowed(t *testing.T) {
	e := loadShipped(t)
	allowed := e.Evaluate(context.Background(), scenarioInput(t, "allow-2-to-3"))
	g, ok := allowed.Grant()
	if !ok || !g.Valid() || g.ConfigIndex() != 12 || g.Candidate().ID != "n4" || g.DecisionID() != allowed.DecisionID {
		t.Fatalf("allowed decision gave grant %+v ok=%v", g, ok)
	}
	denied := e.Evaluate(context.Background(), scenarioInput(t, "deny-already-initialized"))
	if _, ok := denied.Grant(); ok {
		t.Fatal("denied decision gave a grant")
	}
	if (admission.Grant{}).Valid() {
		t.Fatal("a zero grant is valid")
	}
}

func TestForgedDecisionHasNoGrant(t *testing.T) {
	forged := &admission.Decision{Allowed: true}
	if _, ok := forged.Grant(); ok {
		t.Fatal("a decision built outside Evaluate gave a grant")
	}
}

func TestPermanentDenies(t *testing.T) {
	e := loadShipped(t)
	for name, want := range map[string]bool{
		"deny-already-initialized":    true,
		"deny-duplicate-id":           true,
		"deny-raft-unreachable":       false,
		"deny-quorum-3-voters-1-down": false,
	} {
		d := e.Evaluate(context.Background(), scenarioInput(t, name))
		if d.Permanent != want {
			t.Errorf("%s: permanent=%v, want %v (%s)", name, d.Permanent, want, d.Reason)
		}
	}
}

func TestRevisionFollowsFiles(t *testing.T) {
	dir := copyPolicies(t)
	a, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "note_test.rego", "package admitd.note_test\n\ntest_nothing if true\n")
	b, err := admission.Load(context.Background(), admission.DirSource(dir))
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision() == b.Revision() || !strings.HasPrefix(a.Revision(), "sha256:") {
		t.Fatalf("revisions %q and %q", a.Revision(), b.Revision())
	}
	if shipped := loadShipped(t); shipped.Revision() != a.Revision() {
		t.Fatalf("same files, different revisions: %s vs %s", shipped.Revision(), a.Revision())
	}
}

func TestConcurrentEvaluations(t *testing.T) {
	e := loadShipped(t)
	ok := scenarioInput(t, "allow-2-to-3")
	bad := scenarioInput(t, "deny-already-initialized")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				if !e.Evaluate(context.Background(), ok).Allowed {
					errs <- "fresh candidate denied"
				}
				if e.Evaluate(context.Background(), bad).Allowed {
					errs <- "initialized candidate allowed"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// A policy set whose safety stages allow anything still cannot allow a
// candidate whose facts were not collected: the grant needs them.
func TestNoAllowOnUncollectedFactsWhateverThePolicies(t *testing.T) {
	dir := copyPolicies(t)
	for _, name := range []string{"reachability", "init_state", "catch_up", "topology"} {
		writeFile(t, dir, name+".rego", "package admitd.stages."+name+"\n\nallow := true\n")
		_ = os.Remove(filepath.Join(dir, name+"_test.rego"))
	}
	for _, scenario := range []string{"deny-reachability-not-collected", "deny-init-state-missing", "deny-init-state-not-collected",
		"deny-topology-not-collected", "deny-promote-catch-up-missing", "deny-promote-catch-up-not-collected"} {
		d := evalWith(t, dir, scenario)
		if _, ok := d.Grant(); d.Allowed || ok || !strings.Contains(d.Reason, "was not collected") {
			t.Errorf("%s: allowed=%v reason=%q", scenario, d.Allowed, d.Reason)
		}
	}
	for _, scenario := range []string{"allow-2-to-3", "allow-promote-caught-up"} {
		if d := evalWith(t, dir, scenario); !d.Allowed {
			t.Fatalf("%s: complete facts under a permissive set: %s", scenario, d.Reason)
		}
	}
}
