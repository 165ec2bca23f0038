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
	"github.com/admitd/admitd/internal/client"
)

// statusServer answers GET /v1/admissions/a1 with each state in turn.
func statusServer(t *testing.T, states ...string) string {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/admissions/a1" {
			http.NotFound(w, r)
			return
		}
		i := min(int(calls.Add(1))-1, len(states)-1)
		st := admission.Status{AdmissionID: "a1", State: states[i], Candidate: facts.Candidate{ID: "n4"},
			Progress:  &admission.StageProgress{Deadline: time.Now().Add(time.Minute), CatchUp: &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 7}},
			Decisions: []*admission.Decision{{DecisionID: "d" + states[i], AdmissionID: "a1"}}}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWaitPromotionEndsOnASettledState(t *testing.T) {
	for _, final := range []string{admission.StatePromoted, admission.StateRemoved} {
		url := statusServer(t, admission.StateStaged, final)
		var progress bytes.Buffer
		st, err := waitPromotion(context.Background(), client.New(5*time.Second), url, "a1", &progress)
		if err != nil || st.State != final {
			t.Fatalf("want %s, got %+v, %v", final, st, err)
		}
		if progress.Len() != 0 {
			t.Fatalf("progress written to a non-terminal: %q", progress.String())
		}
	}
}

func TestWaitPromotionBoundedAndUnknown(t *testing.T) {
	url := statusServer(t, admission.StateStaged)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := waitPromotion(ctx, client.New(5*time.Second), url, "a1", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not promoted before the wait ended") {
		t.Fatalf("a wait past its bound: %v", err)
	}
	if _, err := waitPromotion(context.Background(), client.New(5*time.Second), url, "zz", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("an unknown admission: %v", err)
	}
}

func TestShowProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	st := &admission.Status{Candidate: facts.Candidate{ID: "n4"}, Progress: &admission.StageProgress{
		Deadline: time.Now().Add(time.Minute),
		CatchUp:  &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 7, LastContactMS: 12, HealthyForMS: 2500}}}
	showProgress(&buf, true, st)
	if out := buf.String(); !strings.Contains(out, "lag 7 entries") || !strings.Contains(out, "healthy 2.5 s") || !strings.HasPrefix(out, "\r") {
		t.Fatalf("progress line %q", out)
	}
}
