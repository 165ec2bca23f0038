package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/internal/testutil"
	"github.com/admitd/admitd/policies"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testClient bounds every call a test makes: a hung handler fails the
// test instead of hanging it.
var testClient = &http.Client{Timeout: 30 * time.Second}

func copyShipped(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runDaemon runs a bootstrapped single node until the test ends.
func runDaemon(t *testing.T, ops OpsConfig, policies string) (string, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	cfg := Config{
		ID: "n1", RaftAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), DataDir: t.TempDir(),
		Policies: policies, Bootstrap: true, Ops: ops, Raft: testRaft,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
	}
	startDaemon(t, &cfg)
	url := "http://" + cfg.HTTPAddr
	waitFor(t, "ready", func() bool {
		resp, err := testClient.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // -race on a busy machine
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func policyStatus(t *testing.T, url string) server.PolicyStatus {
	t.Helper()
	resp, err := testClient.Get(url + "/v1/policies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps server.PolicyStatus
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchReloadsAndRefusesBrokenSets(t *testing.T) {
	dir := copyShipped(t)
	site := filepath.Join(t.TempDir(), "site.json")
	write(t, site, `{"window": "closed"}`)
	url, logs := runDaemon(t, OpsConfig{PolicyTests: true, Watch: true, Debounce: 100 * time.Millisecond, SiteFacts: site}, dir)
	first := policyStatus(t, url)
	if first.Tests == nil || first.Tests.Passed == 0 || !first.SiteFacts {
		t.Fatalf("startup did not run the tests or read the site facts: %+v", first)
	}

	write(t, filepath.Join(dir, "note_test.rego"), "package admitd.note_test\n\ntest_note if true\n")
	waitFor(t, "a reload on a new file", func() bool { return policyStatus(t, url).PolicyRevision != first.PolicyRevision })
	second := policyStatus(t, url)
	if second.LastReload == nil || second.LastReload.Trigger != server.TriggerWatch || second.LastReload.Result != server.ReloadReloaded {
		t.Fatalf("last reload %+v", second.LastReload)
	}

	write(t, filepath.Join(dir, "site.rego"), "package admitd.stages.site\n\nallow if {\n  input.x ==\n}\n")
	waitFor(t, "a refused reload", func() bool {
		lr := policyStatus(t, url).LastReload
		return lr != nil && lr.Result == server.ReloadFailed
	})
	if ps := policyStatus(t, url); ps.PolicyRevision != second.PolicyRevision {
		t.Fatalf("a broken file replaced the running set: %s", ps.PolicyRevision)
	}
	if !strings.Contains(logs.String(), "policy reload refused") || !strings.Contains(logs.String(), "site.rego:") {
		t.Fatalf("the refusal is not logged with the file:\n%s", logs.String())
	}

	os.Remove(filepath.Join(dir, "site.rego"))
	write(t, site, `{"window": "open"}`)
	waitFor(t, "a reload on a fixed set and new site facts", func() bool {
		lr := policyStatus(t, url).LastReload
		return lr != nil && lr.Result == server.ReloadReloaded
	})
	if ps := policyStatus(t, url); ps.PolicyRevision != second.PolicyRevision {
		t.Fatalf("same files, different revision: %s vs %s", ps.PolicyRevision, second.PolicyRevision)
	}
}

func TestOpsConfigCheck(t *testing.T) {
	for _, bad := range []OpsConfig{
		{Mode: "audit"},
		{DecisionLog: decisionlog.Config{File: "-", Mask: []string{"/labels"}}},
		{DecisionLog: decisionlog.Config{Mask: []string{"/input/site/token"}}},
	} {
		if bad.Check() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if (OpsConfig{Mode: "dry-run"}).Check() != nil {
		t.Error("dry-run refused")
	}
	if _, err := readSiteFacts(writeTemp(t, `["not", "an", "object"]`)); err == nil {
		t.Error("site facts must be an object")
	}
	if _, err := readSiteFacts(writeTemp(t, `{"a": 1} {}`)); err == nil {
		t.Error("trailing data accepted")
	}
}

func writeTemp(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "f.json")
	write(t, p, text)
	return p
}

// untestedSet is the shipped set without its tests.
func untestedSet(t *testing.T) string {
	t.Helper()
	dir := copyShipped(t)
	tests, err := filepath.Glob(filepath.Join(dir, "*_test.rego"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no tests to remove: %v", err)
	}
	for _, f := range tests {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A set with no test at all is refused at start unless the operator
// accepts it, and then a warning says so.
func TestUntestedPolicySetRefusedUnlessAllowed(t *testing.T) {
	dir := untestedSet(t)
	cfg := Config{ID: "n1", RaftAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), DataDir: t.TempDir(),
		Policies: dir, Bootstrap: true, Ops: OpsConfig{PolicyTests: true}, Logger: hclog.NewNullLogger()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Run(ctx, cfg); !errors.Is(err, admission.ErrNoTests) {
		t.Fatalf("start on an untested set: %v, want ErrNoTests", err)
	}
	url, logs := runDaemon(t, OpsConfig{PolicyTests: true, AllowUntested: true}, dir)
	if ps := policyStatus(t, url); ps.Tests == nil || ps.Tests.Passed != 0 {
		t.Fatalf("tests %+v", ps.Tests)
	}
	if !strings.Contains(logs.String(), "holds no test") {
		t.Errorf("no warning for the untested set:\n%s", logs.String())
	}
}

// A reload to a set whose tests were all deleted keeps the running set.
func TestReloadToUntestedSetRefused(t *testing.T) {
	dir := copyShipped(t)
	url, _ := runDaemon(t, OpsConfig{PolicyTests: true, Watch: true, Debounce: 100 * time.Millisecond}, dir)
	first := policyStatus(t, url)
	tests, _ := filepath.Glob(filepath.Join(dir, "*_test.rego"))
	for _, f := range tests {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a refused reload", func() bool {
		lr := policyStatus(t, url).LastReload
		return lr != nil && lr.Result == server.ReloadFailed
	})
	if ps := policyStatus(t, url); ps.PolicyRevision != first.PolicyRevision {
		t.Fatalf("an untested set replaced the running one: %s", ps.PolicyRevision)
	}
}
