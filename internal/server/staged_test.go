package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/raftglue"
)

// stagingLeader is a bootstrapped node that stages candidates; its gate
// runs the promoter while it leads.
func stagingLeader(t *testing.T, st server.StagingConfig) *testNode {
	t.Helper()
	n := opsNode(t, "n1", true, func(c *server.Config) {
		c.Staging = st
		c.DecisionsKept = 64
	})
	return n
}

func admitDecision(t *testing.T, leader, cand *testNode) admission.Decision {
	t.Helper()
	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(cand.candidate(), false))
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("HTTP %d: %s", r.status, r.body)
	}
	return d
}

func admissionStatus(t *testing.T, leader *testNode, id string) api.AdmissionStatus {
	t.Helper()
	r := do(t, http.MethodGet, leader.http.URL+"/v1/admissions/"+id, nil)
	var st api.AdmissionStatus
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
		t.Fatalf("GET admission %s: HTTP %d: %s", id, r.status, r.body)
	}
	return st
}

// Only one candidate may be in stage at a time: a second is refused with
// STAGING_FULL, which is not permanent.
func TestSecondCandidateWaitsForStaging(t *testing.T) {
	leader := stagingLeader(t, server.StagingConfig{Enabled: true, Deadline: time.Minute, Interval: time.Hour})
	n2, n3 := opsNode(t, "n2", false, nil), opsNode(t, "n3", false, nil)

	d := admitDecision(t, leader, n2)
	if !d.Allowed || d.Applied == nil || d.Applied.Suffrage != facts.Nonvoter || d.AdmissionID != d.DecisionID {
		t.Fatalf("first candidate: %+v", d)
	}
	d3 := admitDecision(t, leader, n3)
	if d3.Allowed || d3.Permanent || d3.StoppedAt != "topology" || !strings.Contains(d3.Reason, "STAGING_FULL") {
		t.Fatalf("second candidate: allowed %v, permanent %v, %s", d3.Allowed, d3.Permanent, d3.Reason)
	}
	st := admissionStatus(t, leader, d.AdmissionID)
	if st.State != api.StateStaged || st.Candidate.ID != "n2" {
		t.Fatalf("status %+v", st)
	}
	if m := metricsText(t, leader); !strings.Contains(m, "admitd_staged_nonvoters 1") {
		t.Fatalf("metrics do not count the staged non-voter:\n%s", m)
	}
}

// With Keep, a non-voter that misses its deadline stays, and the decision
// log says so once rather than every round.
func TestKeepUnpromotedLeavesNonvoter(t *testing.T) {
	leader := stagingLeader(t, server.StagingConfig{Enabled: true, Deadline: 500 * time.Millisecond, Keep: true, Interval: 100 * time.Millisecond})
	n2 := opsNode(t, "n2", false, nil)
	d := admitDecision(t, leader, n2)
	if d.Applied == nil || d.Applied.Suffrage != facts.Nonvoter {
		t.Fatalf("not staged: %+v", d)
	}
	n2.http.Close() // it stops answering: never healthy, never promoted
	var kept []*admission.Decision
	waitFor(t, "a decision saying it was left in place", func() bool {
		kept = nil
		for _, x := range admissionStatus(t, leader, d.AdmissionID).Decisions {
			if strings.Contains(x.Reason, "left in place") {
				kept = append(kept, x)
			}
		}
		return len(kept) > 0
	})
	time.Sleep(500 * time.Millisecond) // several more rounds
	st := admissionStatus(t, leader, d.AdmissionID)
	suffrage, present, err := leader.node.HasMember(context.Background(), "n2", "")
	if err != nil || !present || suffrage != facts.Nonvoter || st.State != api.StateStaged {
		t.Fatalf("n2: %q present %v (%v), state %s; want a staged non-voter", suffrage, present, err, st.State)
	}
	n := 0
	for _, x := range st.Decisions {
		if strings.Contains(x.Reason, "left in place") {
			n++
		}
		if x.Removed != nil || (x.Phase == facts.PhasePromote && x.Allowed) {
			t.Fatalf("unexpected decision %+v", x)
		}
	}
	if n != 1 {
		t.Fatalf("%d 'left in place' decisions, want exactly 1", n)
	}
}

// /v1/cluster shows the staged ids and each one's progress.
func TestClusterShowsStagingProgress(t *testing.T) {
	leader := stagingLeader(t, server.StagingConfig{Enabled: true, Deadline: time.Minute, Interval: 100 * time.Millisecond})
	n2 := opsNode(t, "n2", false, nil)
	d := admitDecision(t, leader, n2)
	var view struct {
		Staged  []string                  `json:"staged"`
		Staging []admission.StageProgress `json:"staging"`
	}
	waitFor(t, "progress with catch-up facts", func() bool {
		r := do(t, http.MethodGet, leader.http.URL+"/v1/cluster", nil)
		return json.Unmarshal(r.body, &view) == nil && len(view.Staging) == 1 && view.Staging[0].CatchUp != nil && view.Staging[0].CatchUp.Collected
	})
	p := view.Staging[0]
	if !slices.Equal(view.Staged, []string{"n2"}) || p.AdmissionID != d.AdmissionID || p.Deadline.Sub(p.StagedAt) != time.Minute || p.CatchUp.LeaderLastIndex == 0 {
		t.Fatalf("staged %v, progress %+v", view.Staged, p)
	}
}

// Past its deadline a non-voter that was never allowed is removed, without
// a tombstone, and the decision log says why.
func TestUnpromotedRemovedAndLogged(t *testing.T) {
	var buf syncBuffer
	dl, err := decisionlog.Open(decisionlog.Config{File: "-", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	leader := opsNode(t, "n1", true, func(c *server.Config) {
		c.Staging = server.StagingConfig{Enabled: true, Deadline: 500 * time.Millisecond, Interval: 100 * time.Millisecond}
		c.DecisionLog = dl
		c.DecisionsKept = 64
	})

	n2 := opsNode(t, "n2", false, nil)
	d := admitDecision(t, leader, n2)
	n2.http.Close() // never healthy again
	waitFor(t, "the removal", func() bool { return admissionStatus(t, leader, d.AdmissionID).State == api.StateRemoved })

	if _, present, err := leader.node.HasMember(context.Background(), "n2", ""); err != nil || present {
		t.Fatalf("n2 still a member (%v)", err)
	}
	if ts := leader.node.Tombstones(); len(ts) != 0 {
		t.Fatalf("tombstones %v: a staged removal leaves none", ts)
	}
	var removal map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.Contains(fmt.Sprint(ev["result"]), "removed") {
			removal = ev
		}
	}
	if removal == nil || !strings.Contains(fmt.Sprint(removal["result"]), "not promoted within 500ms") ||
		removal["custom"].(map[string]any)["via"] != "promotion" {
		t.Fatalf("no logged removal that says why in:\n%s", buf.String())
	}
}

// grantFor evaluates a shipped scenario with the shipped policies and
// returns its grant.
func grantFor(t *testing.T, scenario string) admission.Grant {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/scenarios/" + scenario + "/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := facts.DecodeBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	in, err := admission.NewInput(doc)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := loadEngine(t).Evaluate(context.Background(), in).Grant()
	if !ok {
		t.Fatalf("%s: no grant", scenario)
	}
	return g
}

// raftglue takes a promote grant only for a staged member, and an admit
// grant never for one: a staged candidate cannot skip its catch-up.
func TestGrantPhaseMustMatchStage(t *testing.T) {
	leader := stagingLeader(t, server.StagingConfig{Enabled: true, Deadline: time.Minute, Interval: time.Hour})
	ctx := context.Background()
	promote, admit := grantFor(t, "allow-promote-caught-up"), grantFor(t, "allow-1-to-2")
	if _, err := leader.node.AddVoter(ctx, promote); !errors.Is(err, raftglue.ErrNotGranted) {
		t.Fatalf("a promote grant for n4, not staged: %v, want ErrNotGranted", err)
	}
	n4 := opsNode(t, "n4", false, nil)
	if d := admitDecision(t, leader, n4); d.Applied == nil || d.Applied.Suffrage != facts.Nonvoter {
		t.Fatalf("n4 not staged: %+v", d)
	}
	if _, err := leader.node.AddVoter(ctx, admit); !errors.Is(err, raftglue.ErrNotGranted) {
		t.Fatalf("an admit grant for staged n4: %v, want ErrNotGranted", err)
	}
	if s, _, err := leader.node.HasMember(ctx, "n4", ""); err != nil || s != facts.Nonvoter {
		t.Fatalf("n4 is %q (%v), want still a non-voter", s, err)
	}
}
