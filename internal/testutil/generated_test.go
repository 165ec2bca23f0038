package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// fatalRecorder notes a Fatalf and ends the goroutine, as testing does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func check(path string, update bool, content string) string {
	r := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CheckGenerated(r, path, update, "regenerate it", Region{Begin: "<!-- B -->", End: "<!-- E -->", Content: content})
	}()
	<-done
	return r.msg
}

func TestCheckGenerated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte("intro\n<!-- B -->\nold\n<!-- E -->\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := check(path, false, "old\n"); msg != "" {
		t.Fatalf("an up-to-date region failed: %s", msg)
	}
	if msg := check(path, false, "new\n"); msg == "" {
		t.Fatal("a stale region passed")
	}
	if msg := check(path, true, "new\n"); msg != "" {
		t.Fatalf("update failed: %s", msg)
	}
	if b, _ := os.ReadFile(path); string(b) != "intro\n<!-- B -->\nnew\n<!-- E -->\nend\n" {
		t.Fatalf("rewritten as %q", b)
	}
}
