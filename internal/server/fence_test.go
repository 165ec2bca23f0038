package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/server"
)

// The leader tells the candidate it is admitted before the raft change, so
// a fenced candidate takes the log.
func TestAdmissionOpensCandidateFence(t *testing.T) {
	leader := newTestNode(t, "n1", true, true, nil)
	cand := newTestNode(t, "n2", false, true, nil)
	if !cand.node.Fenced() {
		t.Fatal("a fresh fenced node starts open")
	}
	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(cand.candidate(), false))
	if r.status != http.StatusOK {
		t.Fatalf("admission: HTTP %d: %s", r.status, r.body)
	}
	if cand.node.Fenced() {
		t.Fatal("the admitted candidate is still fenced")
	}
	waitFor(t, "n2 taking the log", func() bool { return cand.node.ClusterID() == leader.node.ClusterID() })
}

// A candidate that does not take its admission is not added: the answer
// is 502 CANDIDATE_REFUSED and the configuration is unchanged.
func TestCandidateRefusingAdmissionIsNotAdded(t *testing.T) {
	leader := newTestNode(t, "n1", true, true, nil)
	real := newTestNode(t, "n2", false, true, nil)
	// n2's own state and raft address, behind an API that refuses /v1/admitted.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == facts.StatePath {
			real.srv.Handler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(api.Close)
	cand := facts.Candidate{ID: "n2", RaftAddr: real.node.Addr(), APIURL: api.URL}
	before := configIndex(t, leader)

	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(cand, false))
	wantError(t, r, http.StatusBadGateway, "CANDIDATE_REFUSED")
	if got := configIndex(t, leader); got != before {
		t.Fatalf("configuration index moved from %d to %d", before, got)
	}
	if !real.node.Fenced() {
		t.Fatal("the candidate's fence opened")
	}
	var out struct{ Decisions []admission.Decision }
	d := do(t, http.MethodGet, leader.http.URL+"/v1/decisions?limit=1", nil)
	if err := json.Unmarshal(d.body, &out); err != nil || len(out.Decisions) != 1 || out.Decisions[0].Applied != nil ||
		!strings.Contains(out.Decisions[0].Reason, "did not accept") {
		t.Fatalf("recorded decision: %s (%v)", d.body, err)
	}
}

// /v1/admitted refuses a malformed body and leaves the fence shut.
func TestAdmittedRejectsBadBody(t *testing.T) {
	n := newTestNode(t, "n2", false, true, nil)
	for _, body := range []string{`{"cluster_id": 7}`, `{}`, `{"cluster_id": "c", "leader_id": "n1"}`} {
		wantError(t, post(t, n.http.URL+server.AdmittedPath, body), http.StatusBadRequest, "BAD_REQUEST")
		if !n.node.Fenced() {
			t.Fatalf("%s opened the fence", body)
		}
	}
}

// A request another node already forwarded is never forwarded again, on
// any route: two nodes that disagree on the leader cannot bounce it.
func TestForwardedRequestNotForwardedAgain(t *testing.T) {
	leader := newTestNode(t, "n1", true, false, nil)
	n := newTestNode(t, "n2", false, false, nil)
	if r := post(t, leader.http.URL+"/v1/admissions", admissionBody(n.candidate(), false)); r.status != http.StatusOK {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	waitKnowsLeader(t, n, "n1")
	if r := do(t, http.MethodGet, n.http.URL+"/v1/cluster", nil); r.status != http.StatusOK {
		t.Fatalf("a first-hand request is forwarded: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/cluster", "/v1/admissions/x"} {
		// Asked once: the NO_LEADER answer is the point here.
		r := mustSendOnce(t, testClient, http.MethodGet, n.http.URL+path, nil, http.Header{"X-Admitd-Forwarded-By": {"n3"}})
		wantError(t, r, http.StatusServiceUnavailable, "NO_LEADER")
	}
}
