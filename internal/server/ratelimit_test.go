package server_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestAdmissionBurstBeyondLimitGets429(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{rate: 0.5, burst: 3})
	// The limit applies before the body is read, so bad bodies spend tokens
	// and answer fast.
	var codes []int
	for range 6 {
		r := post(t, n.http.URL+"/v1/admissions", `{}`)
		codes = append(codes, r.status)
		if r.status != http.StatusTooManyRequests {
			continue
		}
		wantError(t, r, http.StatusTooManyRequests, "RATE_LIMITED")
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > 2 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if st := do(t, http.MethodGet, n.http.URL+"/v1/state", nil); st.status != http.StatusOK {
			t.Fatalf("/v1/state while limited: %d", st.status)
		}
	}
	want := []int{400, 400, 400, 429, 429, 429}
	if !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	m := do(t, http.MethodGet, n.http.URL+"/metrics", nil)
	if !strings.Contains(string(m.body), "admitd_admissions_rate_limited_total 3") {
		t.Error("metrics lack admitd_admissions_rate_limited_total 3")
	}
}

// Other endpoints do not spend admission tokens.
func TestRateLimitOnlyOnAdmissions(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{rate: 0.1, burst: 1})
	for range 5 {
		if r := post(t, n.http.URL+"/v1/evaluate", `{}`); r.status != http.StatusBadRequest {
			t.Fatalf("evaluate: %d", r.status)
		}
	}
	wantError(t, post(t, n.http.URL+"/v1/admissions", `{}`), http.StatusBadRequest, "BAD_REQUEST")
	wantError(t, post(t, n.http.URL+"/v1/admissions", `{}`), http.StatusTooManyRequests, "RATE_LIMITED")
}
