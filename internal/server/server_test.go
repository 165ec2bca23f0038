package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/raftglue"
)

// testNode is a real raft node with its API served on 127.0.0.1.
type testNode struct {
	node *raftglue.Node
	srv  *server.Server
	http *httptest.Server
}

func (n *testNode) candidate() facts.Candidate {
	return facts.Candidate{ID: n.node.ID(), RaftAddr: n.node.Addr(), APIURL: n.http.URL}
}

func loadEngine(t *testing.T) *admission.Engine {
	t.Helper()
	e, err := admission.Load(context.Background(), admission.DirSource("../../policies"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// startNode starts a node; the API listener is bound first so the node can
// register its real URL.
func startNode(t *testing.T, id string, bootstrap bool) *testNode {
	t.Helper()
	return opsNode(t, id, bootstrap, func(c *server.Config) {
		c.Engine = loadEngine(t)
		c.DecisionsKept = 4
	})
}

// waitKnowsLeader waits until n can forward to leader: it knows the
// leader's id, and its API URL, which comes later, from the log.
func waitKnowsLeader(t *testing.T, n *testNode, leader string) {
	t.Helper()
	waitFor(t, n.node.ID()+" to know its leader's API URL", func() bool {
		return n.node.LeaderID() == leader && n.node.Members()[leader].APIURL != ""
	})
}

// testClient bounds every call a test makes: a hung handler fails the
// test instead of hanging it.
var testClient = &http.Client{Timeout: 30 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with testClient; like send, it asks again while the
// answer is NO_LEADER.
func do(t *testing.T, method, url string, body io.Reader) response {
	t.Helper()
	return mustSend(t, testClient, method, url, body, nil)
}

func post(t *testing.T, url, body string) response {
	return do(t, http.MethodPost, url, strings.NewReader(body))
}

// wantError checks the status and the contract's error shape.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r.body)
	}
	if r.status != status || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
}

func admissionBody(c facts.Candidate, dryRun bool) string {
	b, _ := json.Marshal(map[string]any{"candidate": c, "dry_run": dryRun})
	return string(b)
}

func TestAdmissionRejectsBadBodies(t *testing.T) {
	n := startNode(t, "n1", true)
	good := facts.Candidate{ID: "n9", RaftAddr: "127.0.0.1:9", APIURL: "http://127.0.0.1:9"}
	with := func(f func(*facts.Candidate)) string {
		c := good
		f(&c)
		return admissionBody(c, true)
	}
	cases := map[string]string{
		"malformed JSON":     `{"candidate": {`,
		"trailing data":      admissionBody(good, true) + `{}`,
		"unknown field":      `{"candidate": {"id": "n9", "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9"}, "force": true}`,
		"wrong type":         `{"candidate": {"id": 9, "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9"}}`,
		"empty":              ``,
		"empty id":           with(func(c *facts.Candidate) { c.ID = "" }),
		"long id":            with(func(c *facts.Candidate) { c.ID = strings.Repeat("x", 500) }),
		"id with space":      with(func(c *facts.Candidate) { c.ID = "n 9" }),
		"addr not host:port": with(func(c *facts.Candidate) { c.RaftAddr = "127.0.0.1" }),
		"addr bad port":      with(func(c *facts.Candidate) { c.RaftAddr = "127.0.0.1:99999" }),
		"url not http":       with(func(c *facts.Candidate) { c.APIURL = "ftp://127.0.0.1:9" }),
		"url without host":   with(func(c *facts.Candidate) { c.APIURL = "http://" }),
		"names this node":    with(func(c *facts.Candidate) { c.ID = "n1" }),
		"this node's raft":   with(func(c *facts.Candidate) { c.RaftAddr = n.node.Addr() }),
	}
	before := configIndex(t, n)
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			wantError(t, post(t, n.http.URL+"/v1/admissions", body), http.StatusBadRequest, "BAD_REQUEST")
		})
	}
	if after := configIndex(t, n); after != before {
		t.Fatalf("configuration changed from %d to %d", before, after)
	}
}

func configIndex(t *testing.T, n *testNode) uint64 {
	t.Helper()
	cc, err := n.node.ClusterConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cc.Index
}

func TestOversizedBodies(t *testing.T) {
	n := startNode(t, "n1", true)
	huge := `{"candidate": {"id": "` + strings.Repeat("x", server.MaxBodyBytes+10) + `"}}`
	for _, path := range []string{"/v1/admissions", "/v1/evaluate"} {
		wantError(t, post(t, n.http.URL+path, huge), http.StatusRequestEntityTooLarge, "TOO_LARGE")
	}
}

func TestEvaluateEndpoint(t *testing.T) {
	n := startNode(t, "n1", true)
	good, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, n.http.URL+"/v1/evaluate", string(good))
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || !d.Allowed || d.Enforced {
		t.Fatalf("got %d allowed=%v enforced=%v: %s", r.status, d.Allowed, d.Enforced, r.body)
	}
	bad, _ := os.ReadFile("../../testdata/scenarios/deny-already-initialized/facts.json")
	r = post(t, n.http.URL+"/v1/evaluate", string(bad))
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.Allowed || d.StoppedAt != "init_state" {
		t.Fatalf("got %d: %s", r.status, r.body)
	}
	for _, name := range []string{"error-unknown-schema", "error-not-json", "error-trailing-garbage", "error-wrong-type"} {
		b, _ := os.ReadFile("../../testdata/scenarios/" + name + "/facts.json")
		wantError(t, post(t, n.http.URL+"/v1/evaluate", string(b)), http.StatusBadRequest, "BAD_REQUEST")
	}
}

func TestDecisionsNewestFirstAndBounded(t *testing.T) {
	n := startNode(t, "n1", true)
	good, _ := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	var ids []string
	for i := 0; i < 6; i++ {
		var d admission.Decision
		_ = json.Unmarshal(post(t, n.http.URL+"/v1/evaluate", string(good)).body, &d)
		ids = append(ids, d.DecisionID)
	}
	var list struct {
		Decisions []admission.Decision `json:"decisions"`
	}
	r := do(t, http.MethodGet, n.http.URL+"/v1/decisions?limit=10", nil)
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Decisions) != 4 || list.Decisions[0].DecisionID != ids[5] || list.Decisions[3].DecisionID != ids[2] {
		t.Fatalf("want the 4 newest, newest first; got %d", len(list.Decisions))
	}
	r = do(t, http.MethodGet, n.http.URL+"/v1/decisions/"+ids[5], nil)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(ids[5])) {
		t.Fatalf("decision by id: %d %s", r.status, r.body)
	}
	wantError(t, do(t, http.MethodGet, n.http.URL+"/v1/decisions/"+ids[0], nil), http.StatusNotFound, "NOT_FOUND")
	wantError(t, do(t, http.MethodGet, n.http.URL+"/v1/decisions?limit=zero", nil), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, do(t, http.MethodGet, n.http.URL+"/v1/nothing", nil), http.StatusNotFound, "NOT_FOUND")
}

func TestHealthReadyMetrics(t *testing.T) {
	n := startNode(t, "n1", true)
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, http.MethodGet, n.http.URL+path, nil); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	// The scenario's candidate shows state four ways (its API's flag, and
	// its raft term, refused pre-vote and last index): one deny each.
	good, _ := os.ReadFile("../../testdata/scenarios/deny-already-initialized/facts.json")
	post(t, n.http.URL+"/v1/evaluate", string(good))
	r := do(t, http.MethodGet, n.http.URL+"/metrics", nil)
	for _, want := range []string{`admitd_decisions_total{outcome="deny",via="evaluate"} 1`, `admitd_denies_total{code="ALREADY_INITIALIZED",stage="init_state",via="evaluate"} 4`, "admitd_raft_leader 1"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestStateOfFreshAndBootstrappedNodes(t *testing.T) {
	leader := startNode(t, "n1", true)
	fresh := startNode(t, "n2", false)
	var st facts.NodeState
	_ = json.Unmarshal(do(t, http.MethodGet, fresh.http.URL+"/v1/state", nil).body, &st)
	if st.NodeID != "n2" || st.Initialized || st.ClusterID != "" || st.LastIndex != 0 {
		t.Fatalf("fresh node state %+v", st)
	}
	_ = json.Unmarshal(do(t, http.MethodGet, leader.http.URL+"/v1/state", nil).body, &st)
	if !st.Initialized || st.ClusterID == "" || st.RaftState != "Leader" || st.LeaderID != "n1" || !strings.HasPrefix(st.PolicyRevision, "sha256:") {
		t.Fatalf("leader state %+v", st)
	}
}

// Asking again for a member at its own address, answering as itself, is
// "already a member" (200, nothing applied), not a deny: a lost answer
// must not turn into a permanent refusal.
func TestAdmitFreshThenAlreadyMember(t *testing.T) {
	leader := startNode(t, "n1", true)
	fresh := startNode(t, "n2", false)
	dry := post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), true))
	var d admission.Decision
	if err := json.Unmarshal(dry.body, &d); err != nil || dry.status != http.StatusOK || d.Enforced || d.Applied != nil {
		t.Fatalf("dry run: %d %s", dry.status, dry.body)
	}
	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), false))
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.Applied == nil || d.Applied.Suffrage != "voter" {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	if d.DecidedBy != "n1" || d.ConfigIndex == 0 {
		t.Fatalf("decided_by %q config_index %d", d.DecidedBy, d.ConfigIndex)
	}
	before := configIndex(t, leader)
	r = post(t, leader.http.URL+"/v1/admissions", admissionBody(fresh.candidate(), false))
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.AlreadyMember != "voter" || d.Applied != nil {
		t.Fatalf("second admission: %d %s", r.status, r.body)
	}
	if configIndex(t, leader) != before {
		t.Fatal("asking again changed the configuration")
	}
	// The same id at another address is no such member: decided, and denied.
	other := fresh.candidate()
	other.RaftAddr = startNode(t, "n2", false).node.Addr()
	r = post(t, leader.http.URL+"/v1/admissions", admissionBody(other, false))
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden || d.Allowed {
		t.Fatalf("same id, another address: %d %s", r.status, r.body)
	}
}

func TestRemovedIDIsTombstonedUntilCleared(t *testing.T) {
	leader := startNode(t, "n1", true)
	first := startNode(t, "n2", false)
	admit := func(c facts.Candidate) (int, admission.Decision) {
		var d admission.Decision
		r := post(t, leader.http.URL+"/v1/admissions", admissionBody(c, false))
		_ = json.Unmarshal(r.body, &d)
		return r.status, d
	}
	if status, d := admit(first.candidate()); status != http.StatusOK {
		t.Fatalf("first admission: %d %s", status, d.Reason)
	}
	rm := wantDecision(t, do(t, http.MethodDelete, leader.http.URL+"/v1/members/n2", nil), http.StatusOK, "")
	if rm.Removed == nil || !rm.Tombstoned {
		t.Fatalf("remove: removed %+v tombstoned %v: %s", rm.Removed, rm.Tombstoned, rm.Reason)
	}
	wantDecision(t, do(t, http.MethodDelete, leader.http.URL+"/v1/members/n2", nil), http.StatusForbidden, "NOT_A_MEMBER")
	wantDecision(t, do(t, http.MethodDelete, leader.http.URL+"/v1/members/n1", nil), http.StatusForbidden, "REMOVES_LEADER")

	// The same id on a wiped node: fresh, reachable, and still refused.
	again := startNode(t, "n2", false)
	status, d := admit(again.candidate())
	if status != http.StatusForbidden || d.StoppedAt != "topology" || !strings.Contains(d.Reason, "ID_TOMBSTONED") || !d.Permanent {
		t.Fatalf("tombstoned id: %d %s", status, d.Reason)
	}
	if r := do(t, http.MethodDelete, leader.http.URL+"/v1/tombstones/n2", nil); r.status != http.StatusOK {
		t.Fatalf("clear: %d %s", r.status, r.body)
	}
	if status, d := admit(again.candidate()); status != http.StatusOK || d.Applied == nil {
		t.Fatalf("after clearing: %d %s", status, d.Reason)
	}
}

// wantDecision checks an answer is a decision with status and, when code
// is set, a deny of that code in the stage that stopped it.
func wantDecision(t *testing.T, r response, status int, code string) admission.Decision {
	t.Helper()
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != status || d.DecisionID == "" {
		t.Fatalf("want %d and a decision, got %d %s", status, r.status, r.body)
	}
	if code == "" {
		return d
	}
	if st := d.StoppedStage(); st == nil || !slices.ContainsFunc(st.Deny, func(v admission.Violation) bool { return v.Code == code }) {
		t.Fatalf("want a deny %s, got: %s", code, d.Reason)
	}
	return d
}
