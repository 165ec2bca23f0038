package server_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/admitd/admitd/facts"
)

// A leader's 429 reaches the caller of a follower whole: the status, the
// error, and Retry-After, which says when to ask again.
func TestForwardedRateLimitKeepsRetryAfter(t *testing.T) {
	leader := startNodeWith(t, "n1", true, nodeOpts{rate: 0.01, burst: 1})
	follower := startNodeWith(t, "n2", false, nodeOpts{})
	if r := post(t, leader.http.URL+"/v1/admissions", admissionBody(follower.candidate(), false)); r.status != http.StatusOK {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	waitKnowsLeader(t, follower, "n1")
	n9 := facts.Candidate{ID: "n9", RaftAddr: "127.0.0.1:1", APIURL: "http://127.0.0.1:1"}
	r := post(t, follower.http.URL+"/v1/admissions", admissionBody(n9, false))
	wantError(t, r, http.StatusTooManyRequests, "RATE_LIMITED")
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || r.header.Get("X-Admitd-Forwarded-To") != "n1" {
		t.Fatalf("forwarded 429: Retry-After %q, forwarded to %q", r.header.Get("Retry-After"), r.header.Get("X-Admitd-Forwarded-To"))
	}
}
