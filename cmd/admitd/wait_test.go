package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
)

// stagedDecision is the admission a1 of candidate n4.
var stagedDecision = &admission.Decision{AdmissionID: "a1", Candidate: facts.Candidate{ID: "n4", RaftAddr: "127.0.0.1:7431"}}

// statusServer answers GET /v1/admissions/a1 with each state in turn, and
// GET /v1/cluster with n4 as suffrage ("" for absent).
func statusServer(t *testing.T, suffrage facts.Suffrage, states ...api.State) string {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			topo := facts.Topology{Section: facts.Section{Collected: true}, Servers: []facts.Server{{ID: "n1", Address: "127.0.0.1:7401", Suffrage: facts.Voter}}}
			if suffrage != "" {
				topo.Servers = append(topo.Servers, facts.Server{ID: "n4", Address: "127.0.0.1:7431", Suffrage: suffrage})
			}
			_ = json.NewEncoder(w).Encode(topo)
			return
		}
		if r.URL.Path != "/v1/admissions/a1" || len(states) == 0 {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error": {"code": "NOT_FOUND", "message": "no admission"}}`))
			return
		}
		i := min(int(calls.Add(1))-1, len(states)-1)
		st := api.AdmissionStatus{AdmissionID: "a1", State: states[i], Candidate: facts.Candidate{ID: "n4"},
			Progress:  &admission.StageProgress{Deadline: time.Now().Add(time.Minute), CatchUp: &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 7}},
			Decisions: []*admission.Decision{{DecisionID: "d" + string(states[i]), AdmissionID: "a1"}}}
		if states[i] == api.StatePromoted {
			st.Decisions[0].Applied = &admission.Applied{Suffrage: facts.Voter}
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWaitPromotionEndsOnASettledState(t *testing.T) {
	for _, final := range []api.State{api.StatePromoted, api.StateRemoved} {
		url := statusServer(t, "", api.StateStaged, final)
		var progress bytes.Buffer
		st, err := waitPromotion(context.Background(), client.New(5*time.Second), url, stagedDecision, &progress)
		if err != nil || st.State != final {
			t.Fatalf("want %s, got %+v, %v", final, st, err)
		}
		if progress.Len() != 0 {
			t.Fatalf("progress written to a non-terminal: %q", progress.String())
		}
	}
}

// The configuration shows the voter a moment before the leader records
// the promotion's decision: the wait ends on the decision, not before.
func TestWaitPromotionWaitsForTheDecision(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := api.AdmissionStatus{AdmissionID: "a1", State: api.StatePromoted, Candidate: facts.Candidate{ID: "n4"},
			Decisions: []*admission.Decision{{DecisionID: "admit", Phase: facts.PhaseAdmit, Applied: &admission.Applied{Suffrage: facts.Nonvoter}}}}
		if calls.Add(1) > 3 {
			promote := &admission.Decision{DecisionID: "promote", Phase: facts.PhasePromote, Applied: &admission.Applied{Suffrage: facts.Voter}}
			st.Decisions = append([]*admission.Decision{promote}, st.Decisions...)
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	st, err := waitPromotion(context.Background(), client.New(5*time.Second), srv.URL, stagedDecision, &bytes.Buffer{})
	if err != nil || st.State != api.StatePromoted || st.Decisions[0].DecisionID != "promote" {
		t.Fatalf("want the promotion's decision, got %+v, %v (after %d calls)", st, err, calls.Load())
	}
}

func TestWaitPromotionBoundedAndUnknown(t *testing.T) {
	url := statusServer(t, facts.Nonvoter, api.StateStaged)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := waitPromotion(ctx, client.New(5*time.Second), url, stagedDecision, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not promoted before the wait ended") {
		t.Fatalf("a wait past its bound: %v", err)
	}
	// Unknown to the leader and still a non-voter: nothing to settle on.
	unknown := statusServer(t, facts.Nonvoter)
	if _, err := waitPromotion(context.Background(), client.New(5*time.Second), unknown, stagedDecision, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("an unknown admission: %v", err)
	}
}

// An admission an earlier leader settled is read from the configuration.
func TestWaitPromotionSettledByAnEarlierLeader(t *testing.T) {
	for suffrage, want := range map[facts.Suffrage]api.State{facts.Voter: api.StatePromoted, "": api.StateRemoved} {
		st, err := waitPromotion(context.Background(), client.New(5*time.Second), statusServer(t, suffrage), stagedDecision, &bytes.Buffer{})
		if err != nil || st.State != want {
			t.Fatalf("n4 %q in the configuration: %+v, %v; want %s", suffrage, st, err, want)
		}
	}
}

func TestShowProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	st := &api.AdmissionStatus{Candidate: facts.Candidate{ID: "n4"}, Progress: &admission.StageProgress{
		Deadline: time.Now().Add(time.Minute),
		CatchUp:  &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 7, LastContactMS: 12, HealthyForMS: 2500}}}
	showProgress(&buf, true, st)
	if out := buf.String(); !strings.Contains(out, "lag 7 entries") || !strings.Contains(out, "healthy 2.5 s") || !strings.HasPrefix(out, "\r") {
		t.Fatalf("progress line %q", out)
	}
}

// answering serves POST /v1/admissions with a fixed status and body.
func answering(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A join that was not carried out is not a success: an allow from a
// cluster in dry-run mode exits 1, and so does a 403 that is no decision.
func TestJoinNotAppliedIsError(t *testing.T) {
	dry := `{"decision_id": "d1", "allowed": true, "enforced": false, "applied": null, "candidate": {"id": "n4"}}`
	proxy := `{"error": {"code": "FORBIDDEN", "message": "by a proxy"}}`
	for name, url := range map[string]string{
		"dry-run cluster":  answering(t, http.StatusOK, dry),
		"403 from a proxy": answering(t, http.StatusForbidden, proxy),
	} {
		code, _, errOut := runCmd(t, "", "join", "--server", url, "--id", "n4",
			"--raft-addr", "127.0.0.1:2", "--api-url", "http://127.0.0.1:3", "--timeout", "2s")
		if code != exitError || errOut == "" {
			t.Errorf("%s: exit %d (%s), want %d", name, code, errOut, exitError)
		}
	}
}
