package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

func auditDecision(id, admissionID string) *admission.Decision {
	return &admission.Decision{DecisionID: id, AdmissionID: admissionID}
}

func decisionIDs(ds []*admission.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.DecisionID)
	}
	return out
}

// Evaluations and membership decisions have stores of their own, listed
// together newest first; evaluations never push out a membership decision.
func TestDecisionStoresApart(t *testing.T) {
	ds := newDecisions(2, 3, 3, nil)
	ds.add(auditDecision("a1", ""), "admission")
	for i := range 100 {
		ds.add(auditDecision(fmt.Sprint("e", i), ""), "evaluate")
	}
	ds.add(auditDecision("p1", "a1"), "promotion")
	ds.add(auditDecision("e100", ""), "evaluate")
	ds.add(auditDecision("r1", ""), "removal")
	if got, want := decisionIDs(ds.latest(10)), []string{"r1", "e100", "p1", "e99", "a1"}; !slices.Equal(got, want) {
		t.Fatalf("latest: %v, want %v", got, want)
	}
	if got := decisionIDs(ds.latest(2)); !slices.Equal(got, []string{"r1", "e100"}) {
		t.Fatalf("latest(2): %v", got)
	}
	if got := decisionIDs(ds.ofAdmission("a1")); !slices.Equal(got, []string{"p1", "a1"}) {
		t.Fatalf("admission a1: %v", got)
	}
	if ds.find("a1") == nil || ds.find("e99") == nil || ds.find("e98") != nil {
		t.Fatal("find: a1 and e99 are kept, e98 is not")
	}
	ds.add(auditDecision("a2", ""), "admission")
	if ds.find("a1") != nil || ds.find("p1") == nil {
		t.Fatal("past 3 membership decisions the oldest goes")
	}
}

// The decisions of a staged admission stay past keep, up to the hard cap.
func TestDecisionStorePinsStagedAdmissions(t *testing.T) {
	staged := map[string]bool{"A": true}
	ds := newDecisions(4, 2, 5, func() map[string]bool { return staged })
	ds.add(auditDecision("A", "A"), "admission")
	for i := range 5 {
		ds.add(auditDecision(fmt.Sprint("x", i), ""), "admission")
	}
	ds.add(auditDecision("pA", "A"), "promotion")
	ds.add(auditDecision("x5", ""), "admission")
	if got := decisionIDs(ds.latest(100)); !slices.Equal(got, []string{"x5", "pA", "A"}) {
		t.Fatalf("kept %v, want the newest 2 and A's older decision", got)
	}
	// Hard cap: with everything pinned, the oldest goes past 5.
	for i := range 6 {
		staged[fmt.Sprint("B", i)] = true
		ds.add(auditDecision(fmt.Sprint("B", i), ""), "admission")
	}
	if got := decisionIDs(ds.latest(100)); len(got) != 5 || got[0] != "B5" || slices.Contains(got, "A") {
		t.Fatalf("at the cap: %v", got)
	}
	// Unstaged, A's decisions go like any other.
	delete(staged, "A")
	ds = newDecisions(4, 1, 5, func() map[string]bool { return staged })
	ds.add(auditDecision("A", "A"), "admission")
	ds.add(auditDecision("y", ""), "admission")
	if ds.find("A") != nil {
		t.Fatal("an unstaged admission's decision is pinned")
	}
}

// In a token cluster, hundreds of unauthenticated evaluations leave a
// staged admission's decisions findable, by admission and by decision id,
// while the membership store keeps its own bound.
func TestEvaluationsDoNotFlushAdmissions(t *testing.T) {
	leader := startPNode(t, "n1", "", true, func(c *Config) {
		c.DecisionsKept, c.ChangeDecisionsKept = 4, 2
		c.Staging = StagingConfig{Enabled: true, Deadline: time.Hour, Interval: time.Hour}
	}, nil)
	cand := startPNode(t, "n2", "", false, nil, nil)
	auth := withBearer(proofToken)

	r := pcall(t, http.MethodPost, leader.url+"/v1/admissions", mustJSON(map[string]any{"candidate": cand.candidate()}), auth)
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.AdmissionID == "" {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	// More membership decisions than ChangeDecisionsKept: dry runs of
	// another candidate, each recorded.
	var dry []string
	for range 4 {
		c := facts.Candidate{ID: "n9", RaftAddr: "127.0.0.1:1"}
		r := pcall(t, http.MethodPost, leader.url+"/v1/admissions", mustJSON(map[string]any{"candidate": c, "dry_run": true}), auth)
		var dd admission.Decision
		if err := json.Unmarshal(r.body, &dd); err != nil || dd.DecisionID == "" {
			t.Fatalf("dry run: %d %s", r.status, r.body)
		}
		dry = append(dry, dd.DecisionID)
	}
	good, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if r := pcall(t, http.MethodPost, leader.url+"/v1/evaluate", good, nil); r.status != http.StatusOK {
			t.Fatalf("evaluation %d: %d %s", i, r.status, r.body)
		}
	}

	r = pcall(t, http.MethodGet, leader.url+"/v1/admissions/"+d.AdmissionID, nil, auth)
	var st api.AdmissionStatus
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != http.StatusOK || st.State != api.StateStaged ||
		!slices.Contains(decisionIDs(st.Decisions), d.DecisionID) {
		t.Fatalf("GET /v1/admissions/%s: %d %s", d.AdmissionID, r.status, r.body)
	}
	if r := pcall(t, http.MethodGet, leader.url+"/v1/decisions/"+d.DecisionID, nil, auth); r.status != http.StatusOK {
		t.Fatalf("GET /v1/decisions/%s: %d %s", d.DecisionID, r.status, r.body)
	}
	if r := pcall(t, http.MethodGet, leader.url+"/v1/decisions/"+dry[0], nil, auth); r.status != http.StatusNotFound {
		t.Fatalf("the oldest dry run, past ChangeDecisionsKept and not staged: %d %s", r.status, r.body)
	}
	var list struct{ Decisions []*admission.Decision }
	r = pcall(t, http.MethodGet, leader.url+"/v1/decisions?limit=1000", nil, auth)
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	// 4 evaluations, newest first, then the 2 newest dry runs and the admission.
	got := decisionIDs(list.Decisions)
	if len(got) != 7 || !slices.Equal(got[4:], []string{dry[3], dry[2], d.DecisionID}) ||
		slices.ContainsFunc(got[:4], func(id string) bool { return slices.Contains(dry, id) || id == d.DecisionID }) {
		t.Fatalf("listed %v; dry runs %v, admission %s", got, dry, d.DecisionID)
	}
}
