package testutil

import (
	"os"
	"strings"
	"testing"
)

// Region is a generated part of a document: the lines between two marker
// lines, and what generates them.
type Region struct {
	Begin, End string
	Content    string
}

// CheckGenerated fails the test when a region of the document at path is
// not what generates it; with update it rewrites the file instead. how is
// the command that regenerates the document, for the failure message.
func CheckGenerated(t testing.TB, path string, update bool, how string, regions ...Region) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := doc
	for _, r := range regions {
		i, j := strings.Index(want, r.Begin), strings.Index(want, r.End)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the markers %s ... %s", path, r.Begin, r.End)
		}
		want = want[:i+len(r.Begin)] + "\n" + r.Content + want[j:]
	}
	if want == doc {
		return
	}
	if !update {
		t.Fatalf("%s is stale: run %s", path, how)
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}
