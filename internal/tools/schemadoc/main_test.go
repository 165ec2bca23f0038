package main

import (
	"os"
	"strings"
	"testing"
)

const docFile = "../../../docs/policies.md"

// The facts reference in docs/policies.md must match the Go types.
func TestDocsAreFresh(t *testing.T) {
	ref, err := Generate("../../../facts")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Splice(string(b), ref)
	if err != nil {
		t.Fatal(err)
	}
	if want != string(b) {
		t.Fatal("docs/policies.md's facts schema is stale: run go run ./internal/tools/schemadoc -w docs/policies.md")
	}
}

func TestEveryFieldListed(t *testing.T) {
	ref, err := Generate("../../../facts")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"`candidate.raft_addr`", "`init_state.initialized`", "`topology.servers[_].policy_revision`", "`site`"} {
		if !strings.Contains(ref, "| "+field+" |") {
			t.Errorf("reference lacks %s", field)
		}
	}
	if !strings.Contains(ref, "| `reachability` | object | ") || !strings.Contains(ref, "_(may be missing)_") {
		t.Error("sections must be marked as possibly missing")
	}
}

func TestSpliceNeedsMarkers(t *testing.T) {
	if _, err := Splice("no markers here", "x"); err == nil {
		t.Fatal("spliced without markers")
	}
	got, err := Splice("a\n"+Begin+"\nold\n"+End+"\nb", "new\n")
	if err != nil || got != "a\n"+Begin+"\nnew\n"+End+"\nb" {
		t.Fatalf("%q %v", got, err)
	}
}
