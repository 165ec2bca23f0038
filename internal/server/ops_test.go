package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/policies"
	"github.com/admitd/admitd/raftglue"
)

// opsNode starts a node whose server config a test adjusts.
func opsNode(t *testing.T, id string, bootstrap bool, adjust func(*server.Config)) *testNode {
	t.Helper()
	return newTestNode(t, id, bootstrap, false, adjust)
}

// newTestNode is opsNode with the raft fence on or off.
func newTestNode(t *testing.T, id string, bootstrap, fence bool, adjust func(*server.Config)) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	hs.Listener.Close()
	hs.Listener = ln
	node, err := raftglue.Open(raftglue.Config{
		ID: id, RaftAddr: "127.0.0.1:0", APIURL: "http://" + ln.Addr().String(), DataDir: t.TempDir(),
		HeartbeatTimeout: server.TestHeartbeatTimeout, ElectionTimeout: server.TestElectionTimeout,
		LeaderLeaseTimeout: server.TestLeaderLeaseTimeout, CommitTimeout: server.TestCommitTimeout,
		Fence: fence,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Node: node, Engine: loadDir(t, "../../policies"), DecisionsKept: 16}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		_ = node.Shutdown()
	})
	if bootstrap {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &testNode{node: node, srv: srv, http: hs}
}

// shipped is the shipped set loaded and tested once per test process: an
// engine is immutable and safe to share, and running its tests for every
// node made this package slow under -race.
var shipped = sync.OnceValues(func() (*admission.Engine, error) {
	return admission.LoadWith(context.Background(), admission.DirSource("../../policies"), admission.Options{RunTests: true})
})

func loadDir(t *testing.T, dir string) *admission.Engine {
	t.Helper()
	if dir == "../../policies" {
		e, err := shipped()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e, err := admission.LoadWith(context.Background(), admission.DirSource(dir), admission.Options{RunTests: true})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// policyCopy copies the shipped set, plus extra files, into a new dir.
func policyCopy(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dirReload(dir *atomic.Value, tests bool) server.ReloadFunc {
	return func(ctx context.Context) (*admission.Engine, error) {
		return admission.LoadWith(ctx, admission.DirSource(dir.Load().(string)), admission.Options{RunTests: tests})
	}
}

func facts23(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func metricsText(t *testing.T, n *testNode) string {
	t.Helper()
	return string(do(t, http.MethodGet, n.http.URL+"/metrics", nil).body)
}

// Reloads race with evaluations: every decision carries the old or the new
// revision, and none fails.
func TestReloadRacesWithEvaluations(t *testing.T) {
	a := policyCopy(t, nil)
	b := policyCopy(t, map[string]string{"note_test.rego": "package admitd.note_test\n\ntest_note if true\n"})
	var dir atomic.Value
	dir.Store(a)
	n := opsNode(t, "n1", true, func(c *server.Config) {
		c.Engine = loadDir(t, a)
		c.Reload = dirReload(&dir, false) // tests are covered below; this is about the swap
	})
	revA := n.srv.Engine().Revision()
	revB := loadDir(t, b).Revision()
	if revA == revB {
		t.Fatal("the two sets have the same revision")
	}
	body := facts23(t)
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	defer wg.Wait()
	defer halt()
	errs := make(chan string, 100)
	// A full channel drops a report rather than block a worker: the first
	// hundred say enough.
	report := func(m string) {
		select {
		case errs <- m:
		default:
		}
	}
	seen := sync.Map{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := testClient.Post(n.http.URL+"/v1/evaluate", "application/json", strings.NewReader(body))
				if err != nil {
					report(err.Error())
					return
				}
				var d admission.Decision
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				switch {
				case err != nil || resp.StatusCode != http.StatusOK:
					report(fmt.Sprintf("status %d, %v", resp.StatusCode, err))
				case d.PolicyRevision != revA && d.PolicyRevision != revB:
					report("unknown revision " + d.PolicyRevision)
				case !d.Allowed:
					report("denied during a reload: " + d.Reason)
				}
				seen.Store(d.PolicyRevision, true)
			}
		}()
	}
	for i := 0; i < 6; i++ {
		if i%2 == 0 {
			dir.Store(b)
		} else {
			dir.Store(a)
		}
		var res server.ReloadResult
		r := post(t, n.http.URL+"/v1/policies/reload", "")
		if err := json.Unmarshal(r.body, &res); err != nil || r.status != http.StatusOK || res.Result != server.ReloadReloaded {
			t.Fatalf("reload %d: %d %s", i, r.status, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	halt()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, rev := range []string{revA, revB} {
		if _, ok := seen.Load(rev); !ok {
			t.Errorf("no decision saw revision %s", rev)
		}
	}
}

func TestBrokenPolicyKeepsOldRevision(t *testing.T) {
	good := policyCopy(t, nil)
	var dir atomic.Value
	dir.Store(good)
	n := opsNode(t, "n1", true, func(c *server.Config) { c.Reload = dirReload(&dir, true) })
	old := n.srv.Engine().Revision()
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"syntax error": {map[string]string{"site.rego": "package admitd.stages.site\n\nallow if {\n  input.x ==\n}\n"}, "site.rego:"},
		"type error":   {map[string]string{"site.rego": "package admitd.stages.site\n\nallow if {\n  count(1) > 0\n}\n"}, "site.rego:4"},
		"failing test": {map[string]string{"site_test.rego": "package admitd.site_test\n\ntest_fails if {\n\t1 == 2\n}\n"}, "site_test.rego:3: admitd.site_test.test_fails: FAIL"},
		"bad pipeline": {map[string]string{"pipeline.rego": "package admitd.pipeline\n\nstages := [\"topology\"]\n"}, "must start with"},
	}
	failures := 0
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir.Store(policyCopy(t, c.files))
			r := post(t, n.http.URL+"/v1/policies/reload", "")
			var body struct {
				Error  api.Error           `json:"error"`
				Reload server.ReloadResult `json:"reload"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || r.status != http.StatusUnprocessableEntity {
				t.Fatalf("want 422, got %d %s", r.status, r.body)
			}
			failures++
			if body.Error.Code != "POLICY_RELOAD_FAILED" || !strings.Contains(body.Error.Message, c.want) {
				t.Fatalf("error does not say %q: %+v", c.want, body.Error)
			}
			if body.Reload.Result != server.ReloadFailed || body.Reload.PolicyRevision != old {
				t.Fatalf("reload report %+v", body.Reload)
			}
			var st facts.NodeState
			_ = json.Unmarshal(do(t, http.MethodGet, n.http.URL+"/v1/state", nil).body, &st)
			if st.PolicyRevision != old || n.srv.Engine().Revision() != old {
				t.Fatalf("the running revision changed to %s", st.PolicyRevision)
			}
			var d admission.Decision
			_ = json.Unmarshal(post(t, n.http.URL+"/v1/evaluate", facts23(t)).body, &d)
			if d.PolicyRevision != old || !d.Allowed {
				t.Fatalf("decisions after a refused reload: %+v", d)
			}
		})
	}
	want := fmt.Sprintf(`admitd_policy_reloads_total{result="failed",trigger="api"} %d`, failures)
	if m := metricsText(t, n); !strings.Contains(m, want) {
		t.Fatalf("metrics lack %s", want)
	}
	var ps server.PolicyStatus
	_ = json.Unmarshal(do(t, http.MethodGet, n.http.URL+"/v1/policies", nil).body, &ps)
	if ps.PolicyRevision != old || ps.LastReload == nil || ps.LastReload.Result != server.ReloadFailed || !ps.ReloadEnabled {
		t.Fatalf("/v1/policies %+v", ps)
	}
	// Back to a good set: reloaded; the same again: unchanged.
	dir.Store(policyCopy(t, map[string]string{"more_test.rego": "package admitd.more_test\n\ntest_ok if true\n"}))
	for _, want := range []string{server.ReloadReloaded, server.ReloadUnchanged} {
		res, err := n.srv.Reload(context.Background(), server.TriggerSignal)
		if err != nil || res.Result != want || res.Tests == nil || res.Tests.Passed == 0 {
			t.Fatalf("want %s, got %+v %v", want, res, err)
		}
	}
	if m := metricsText(t, n); !strings.Contains(m, `admitd_policy_reloads_total{result="reloaded",trigger="signal"} 1`) ||
		!strings.Contains(m, `admitd_policy_info{revision="`+n.srv.Engine().Revision()) {
		t.Fatal("metrics do not show the successful reload")
	}
}

func TestReloadUnavailableWithoutReloader(t *testing.T) {
	n := opsNode(t, "n1", true, nil)
	wantError(t, post(t, n.http.URL+"/v1/policies/reload", ""), http.StatusNotImplemented, "NOT_IMPLEMENTED")
	if _, err := n.srv.Reload(context.Background(), server.TriggerAPI); !errors.Is(err, server.ErrReloadUnavailable) {
		t.Fatal(err)
	}
}

func TestMetricsAfterDecision(t *testing.T) {
	n := opsNode(t, "n1", true, nil)
	before := metricsText(t, n)
	for _, name := range []string{`admitd_decisions_total{`, `admitd_stage_results_total{`} {
		if strings.Contains(before, name) {
			t.Fatalf("%s before any decision", name)
		}
	}
	post(t, n.http.URL+"/v1/evaluate", facts23(t))
	m := metricsText(t, n)
	for _, want := range []string{
		`admitd_decisions_total{outcome="allow",via="evaluate"} 1`,
		`admitd_evaluation_duration_seconds_count 1`,
		`admitd_stage_results_total{outcome="allow",stage="topology",via="evaluate"} 1`,
		`admitd_raft_state{state="Leader"} 1`,
		`admitd_raft_state{state="Follower"} 0`,
		`admitd_enforcing{mode="enforce"} 1`,
		`admitd_policy_reloads_total{result="failed",trigger="watch"} 0`,
		`admitd_policy_info{revision="sha256:`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	b, _ := os.ReadFile("../../testdata/scenarios/allow-3-to-4-warns-even/facts.json")
	post(t, n.http.URL+"/v1/evaluate", string(b))
	if m := metricsText(t, n); !strings.Contains(m, `admitd_warnings_total{code="EVEN_VOTERS",stage="topology",via="evaluate"} 1`) {
		t.Error("warnings are not counted")
	}
}

func TestDecisionLogFromServer(t *testing.T) {
	var buf syncBuffer
	dl, err := decisionlog.Open(decisionlog.Config{File: "-", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	n := opsNode(t, "n1", true, func(c *server.Config) { c.DecisionLog = dl })
	var d admission.Decision
	_ = json.Unmarshal(post(t, n.http.URL+"/v1/evaluate", facts23(t)).body, &d)
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(nil, 1<<20)
	var lines []map[string]any
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not JSON: %s", sc.Bytes())
		}
		lines = append(lines, ev)
	}
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %d", len(lines))
	}
	ev := lines[0]
	for _, f := range []string{"decision_id", "path", "input", "result", "timestamp", "metrics", "labels", "bundles", "custom"} {
		if ev[f] == nil {
			t.Errorf("no %s in %v", f, ev)
		}
	}
	if ev["decision_id"] != d.DecisionID || ev["labels"].(map[string]any)["id"] != "n1" ||
		ev["bundles"].(map[string]any)["admitd"].(map[string]any)["revision"] != d.PolicyRevision ||
		ev["custom"].(map[string]any)["via"] != "evaluate" {
		t.Fatalf("event does not match the decision: %v", ev)
	}
	if !strings.Contains(metricsText(t, n), `admitd_decision_log_events_total{result="written"} 1`) {
		t.Error("decision log events not counted")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDryRunModeNeverChangesMembership(t *testing.T) {
	leader := opsNode(t, "n1", true, func(c *server.Config) { c.DryRun = true })
	fresh := opsNode(t, "n2", false, nil)
	before := configIndex(t, leader)
	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), false))
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || !d.Allowed || d.Enforced || d.Applied != nil {
		t.Fatalf("want an allowed, unenforced, unapplied decision; got %d %s", r.status, r.body)
	}
	if configIndex(t, leader) != before {
		t.Fatal("dry-run mode changed the configuration")
	}
	if d := wantDecision(t, do(t, http.MethodDelete, leader.http.URL+"/v1/members/n9", nil), http.StatusForbidden, "NOT_A_MEMBER"); d.Enforced {
		t.Error("a removal decided in dry-run mode says it is enforced")
	}
	if !strings.Contains(metricsText(t, leader), `admitd_enforcing{mode="dry-run"} 0`) {
		t.Error("metrics do not show dry-run mode")
	}
}

func TestExplainOnTheAPI(t *testing.T) {
	leader := opsNode(t, "n1", true, nil)
	bad, _ := os.ReadFile("../../testdata/scenarios/deny-already-initialized/facts.json")
	for _, c := range []struct {
		query string
		want  bool
	}{{"", false}, {"?explain=true", true}} {
		var d admission.Decision
		_ = json.Unmarshal(post(t, leader.http.URL+"/v1/evaluate"+c.query, string(bad)).body, &d)
		got := false
		for _, s := range d.Stages {
			if strings.Contains(strings.Join(s.Explain, "\n"), "fired  deny (Already initialized)") {
				got = true
			}
		}
		if got != c.want {
			t.Fatalf("evaluate%s: explain %v, want %v: %+v", c.query, got, c.want, d.Stages)
		}
	}
	fresh := opsNode(t, "n2", false, nil)
	body, _ := json.Marshal(map[string]any{"candidate": fresh.candidate(), "dry_run": true, "explain": true})
	var d admission.Decision
	r := post(t, leader.http.URL+"/v1/admissions", string(body))
	if err := json.Unmarshal(r.body, &d); err != nil || len(d.Stages) == 0 || len(d.Stages[0].Explain) == 0 {
		t.Fatalf("admission with explain: %d %s", r.status, r.body)
	}
}

func TestSiteFactsReachTheAdmission(t *testing.T) {
	dir := policyCopy(t, map[string]string{
		"pipeline.rego": "package admitd.pipeline\n\nstages := [\"reachability\", \"init_state\", \"topology\", \"site\"]\n",
		"site.rego": `package admitd.stages.site

default allow := false

allow if input.site.open == true

deny contains {"code": "SITE_CLOSED", "message": "the site is closed"} if not allow
`,
	})
	load := func(open bool) *admission.Engine {
		e, err := admission.LoadWith(context.Background(), admission.DirSource(dir), admission.Options{Site: map[string]any{"open": open}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	open := atomic.Bool{}
	leader := opsNode(t, "n1", true, func(c *server.Config) {
		c.Engine = load(false)
		c.Reload = func(context.Context) (*admission.Engine, error) { return load(open.Load()), nil }
	})
	fresh := opsNode(t, "n2", false, nil)
	var d admission.Decision
	_ = json.Unmarshal(post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), true)).body, &d)
	if d.Allowed || d.StoppedAt != "site" {
		t.Fatalf("want a site deny, got %s", d.Reason)
	}
	open.Store(true)
	if res, err := leader.srv.Reload(context.Background(), server.TriggerAPI); err != nil || res.Result != server.ReloadReloaded {
		t.Fatalf("changed site facts must reload: %+v %v", res, err)
	}
	_ = json.Unmarshal(post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), true)).body, &d)
	var in struct {
		Site map[string]any `json:"site"`
	}
	_ = json.Unmarshal(d.Facts, &in)
	if !d.Allowed || in.Site["open"] != true {
		t.Fatalf("want an allow with the site facts in the input, got %s / %s", d.Reason, d.Facts)
	}
}

// A follower in dry-run mode forwards a removal to an enforcing leader as a
// dry run: it never asks for a change, forwarded or not.
func TestDryRunFollowerForwardsRemovalAsDryRun(t *testing.T) {
	leader := opsNode(t, "n1", true, nil)
	follower := opsNode(t, "n2", false, func(c *server.Config) { c.DryRun = true })
	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(follower.candidate(), false))
	if r.status != http.StatusOK {
		t.Fatalf("admitting n2: %d %s", r.status, r.body)
	}
	waitKnowsLeader(t, follower, "n1")
	before := configIndex(t, leader)
	// 2 voters, both healthy: removing n2 leaves 1 healthy of 1, a quorum.
	d := wantDecision(t, do(t, http.MethodDelete, follower.http.URL+"/v1/members/n2", nil), http.StatusOK, "")
	if !d.Allowed || d.Enforced || d.Removed != nil {
		t.Fatalf("forwarded from a dry-run node: allowed %v enforced %v removed %+v", d.Allowed, d.Enforced, d.Removed)
	}
	if configIndex(t, leader) != before {
		t.Fatal("a dry-run node's forwarded removal changed the configuration")
	}
}
