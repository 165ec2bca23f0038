package admission_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// The site examples of docs/policies.md, copied over the shipped set as
// the docs say, pass their tests and decide the example facts as shown.
func TestDocsSiteExamples(t *testing.T) {
	dir := copyPolicies(t)
	files, _ := filepath.Glob("../docs/examples/site/*.rego")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(f), string(b))
	}
	e, err := admission.LoadWith(context.Background(), admission.DirSource(dir), admission.Options{RunTests: true})
	if err != nil {
		t.Fatalf("the documented site set does not load and pass its tests: %v", err)
	}
	if !e.HasMask() || len(e.Stages()) != 6 {
		t.Fatalf("stages %v, mask %v", e.Stages(), e.HasMask())
	}
	for file, stoppedAt := range map[string]string{
		"admitted.json":         "",
		"outside-network.json":  "site_cidr",
		"no-window.json":        "maintenance_window",
		"revisions-differ.json": "policy_agreement",
	} {
		b, err := os.ReadFile(filepath.Join("../docs/examples/facts", file))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := facts.DecodeBytes(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		in, err := admission.NewInput(dec)
		if err != nil {
			t.Fatal(err)
		}
		d := e.Evaluate(context.Background(), in)
		if d.StoppedAt != stoppedAt || d.Allowed != (stoppedAt == "") {
			t.Errorf("%s: stopped at %q (allowed %v), want %q: %s", file, d.StoppedAt, d.Allowed, stoppedAt, d.Reason)
		}
	}
}
