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
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
)

// answers serves one canned answer per POST /v1/admissions, the last one
// again once they run out, and counts the calls.
func answers(t *testing.T, list ...func(http.ResponseWriter)) (string, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := int(calls.Add(1)) - 1
		list[min(i, len(list)-1)](w)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &calls
}

func noLeader(w http.ResponseWriter) {
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"error":{"code":"NO_LEADER","message":"no leader yet"}}`))
}

func decided(status int, d admission.Decision) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(d)
	}
}

// No leader, then a transient deny, then an allow: asked three times.
func TestJoinRetriesWhatWillPass(t *testing.T) {
	staging := admission.Decision{DecisionID: "d1", Reason: "topology: STAGING_FULL: wait for the slot"}
	allowed := admission.Decision{DecisionID: "d2", Allowed: true, Applied: &admission.Applied{Suffrage: "voter", Index: 9}}
	url, calls := answers(t, noLeader, decided(http.StatusForbidden, staging), decided(http.StatusOK, allowed))
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := admitRetrying(ctx, client.New(5*time.Second), url, api.AdmissionRequest{}, &progress)
	if err != nil || d == nil || !d.Allowed || calls.Load() != 3 {
		t.Fatalf("got %+v %v after %d calls", d, err, calls.Load())
	}
	for _, want := range []string{"503 NO_LEADER", "STAGING_FULL"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

// A permanent deny is the answer: asked once.
func TestJoinStopsAtPermanentDeny(t *testing.T) {
	initialized := admission.Decision{DecisionID: "d1", Permanent: true, Reason: "init_state: ALREADY_INITIALIZED"}
	url, calls := answers(t, decided(http.StatusForbidden, initialized))
	d, err := admitRetrying(context.Background(), client.New(5*time.Second), url, api.AdmissionRequest{}, &bytes.Buffer{})
	if err != nil || d == nil || d.Allowed || calls.Load() != 1 {
		t.Fatalf("got %+v %v after %d calls", d, err, calls.Load())
	}
}

// Time runs out on a transient deny: the last decision is the answer.
func TestJoinTimeoutOnDenyReturnsIt(t *testing.T) {
	staging := admission.Decision{DecisionID: "d1", Reason: "topology: STAGING_FULL"}
	url, calls := answers(t, decided(http.StatusForbidden, staging))
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	d, err := admitRetrying(ctx, client.New(5*time.Second), url, api.AdmissionRequest{}, &bytes.Buffer{})
	if err != nil || d == nil || d.Allowed || d.DecisionID != "d1" || calls.Load() < 2 {
		t.Fatalf("got %+v %v after %d calls", d, err, calls.Load())
	}
}

// Time runs out while a call is in flight: the deny before it is the answer.
func TestJoinTimeoutMidCallReturnsLastDeny(t *testing.T) {
	staging := admission.Decision{DecisionID: "d1", Reason: "topology: STAGING_FULL"}
	slow := func(w http.ResponseWriter) {
		time.Sleep(2 * time.Second) // outlives the deadline below
		decided(http.StatusForbidden, staging)(w)
	}
	url, _ := answers(t, decided(http.StatusForbidden, staging), slow)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	d, err := admitRetrying(ctx, client.New(5*time.Second), url, api.AdmissionRequest{}, &bytes.Buffer{})
	if err != nil || d == nil || d.DecisionID != "d1" {
		t.Fatalf("got %+v %v, want the last deny", d, err)
	}
}
