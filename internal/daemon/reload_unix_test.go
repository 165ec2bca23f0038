//go:build unix

package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/server"
)

func TestSIGHUPReloads(t *testing.T) {
	dir := copyShipped(t)
	logFile := filepath.Join(t.TempDir(), "decisions.log")
	url, _ := runDaemon(t, OpsConfig{DecisionLog: decisionlog.Config{File: logFile}}, dir)
	first := policyStatus(t, url).PolicyRevision
	write(t, filepath.Join(dir, "note_test.rego"), "package admitd.note_test\n\ntest_note if true\n")
	time.Sleep(300 * time.Millisecond)
	if policyStatus(t, url).PolicyRevision != first {
		t.Fatal("reloaded without a signal while not watching")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reload on SIGHUP", func() bool { return policyStatus(t, url).PolicyRevision != first })
	if lr := policyStatus(t, url).LastReload; lr.Trigger != server.TriggerSignal {
		t.Fatalf("last reload %+v", lr)
	}
	facts, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Post(url+"/v1/evaluate", "application/json", bytes.NewReader(facts))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b, _ := os.ReadFile(logFile)
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("decision log: %v: %s", err, b)
	}
	if ev["bundles"].(map[string]any)["admitd"].(map[string]any)["revision"] == first {
		t.Fatal("the decision after the reload reports the old revision")
	}
}
