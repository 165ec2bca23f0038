package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Hostile 16: in a cluster started with --token-file, a fake candidate
// must learn nothing that works as the cluster token, and unauthenticated
// evaluations must not flush the trail of real admissions.

const h16Token = "hostile16-cluster-token"

// h16TokenFlags writes the token to a file and returns the serve flags.
func h16TokenFlags(t *testing.T) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(h16Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--token-file", p}
}

type h16Answer struct {
	status int
	header http.Header
	body   []byte
}

func h16Do(t *testing.T, method, url string, body []byte, header http.Header) h16Answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return h16Answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func h16Bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// h16Admit posts an admission with the token, asking again while the
// cluster has no leader, and decodes the decision.
func h16Admit(t *testing.T, n *node, c candidate) decision {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"candidate": c})
	var r h16Answer
	eventually(t, "an admission answered by a leader", func() (bool, string) {
		r = h16Do(t, http.MethodPost, n.url+"/v1/admissions", body, h16Bearer(h16Token))
		return !(r.status == http.StatusServiceUnavailable && strings.Contains(string(r.body), "NO_LEADER")), string(r.body)
	})
	var d decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || !d.Allowed || d.Applied == nil || d.Applied.Suffrage != "voter" {
		t.Fatalf("admitting %s: HTTP %d %s", c.ID, r.status, r.body)
	}
	return d
}

// h16Captured is one request the fake candidate received at /v1/admitted.
type h16Captured struct {
	header http.Header
	body   []byte
}

// h16CapturingAPI serves a fresh node's /v1/state for id at raftAddr and
// records every request to /v1/admitted, which it accepts.
func h16CapturingAPI(t *testing.T, id, raftAddr string) (*httptest.Server, func() []h16Captured) {
	t.Helper()
	var mu sync.Mutex
	var seen []h16Captured
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"node_id": id, "raft_addr": raftAddr, "api_url": srv.URL,
			"initialized": false, "cluster_id": "", "last_index": 0, "last_term": 0, "term": 0,
			"last_contact_ms": -1, "raft_state": "Follower", "leader_id": "", "version": "x",
		})
	})
	mux.HandleFunc("/v1/admitted", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, h16Captured{header: r.Header.Clone(), body: b})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"fenced": false, "initialized": false}`)
	})
	return srv, func() []h16Captured {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// The leader tells a fake candidate (a bare raft server behind a capturing
// API) it is admitted with a proof, not the token: the request has no
// Authorization header, replaying it to another fresh admitd node is
// refused, and nothing captured passes a guarded endpoint.
func TestHostile16FenceProofNotToken(t *testing.T) {
	t.Parallel()
	tokenFlags := h16TokenFlags(t)
	n1 := bootstrapNode(t, opts{id: "n1", extra: tokenFlags})
	bare := startBareRaft(t, "bare16")
	api, captured := h16CapturingAPI(t, bare.id, bare.addr)

	d := h16Admit(t, n1, candidate{ID: bare.id, RaftAddr: bare.addr, APIURL: api.URL})
	reqs := captured()
	if len(reqs) != 1 {
		t.Fatalf("the fake candidate received %d requests at /v1/admitted, want 1", len(reqs))
	}
	got := reqs[0]
	if v := got.header.Values("Authorization"); len(v) != 0 {
		t.Fatalf("the candidate received Authorization %q", v)
	}
	var raw strings.Builder
	_ = got.header.Write(&raw)
	if strings.Contains(raw.String()+string(got.body), h16Token) {
		t.Fatalf("the token reached the candidate:\n%s\n%s", raw.String(), got.body)
	}
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil || body["candidate_id"] != bare.id ||
		body["decision_id"] != d.DecisionID || body["leader_id"] != "n1" || body["proof"] == "" || body["proof"] == nil {
		t.Fatalf("the notice the candidate received: %s (%v)", got.body, err)
	}

	// Replayed, headers and body as captured, to another fresh admitd node
	// of the same cluster token, and to the leader: refused.
	n9 := startNode(t, opts{id: "n9", extra: tokenFlags})
	waitUp(t, n9)
	for _, n := range []*node{n9, n1} {
		r := h16Do(t, http.MethodPost, n.url+"/v1/admitted", got.body, got.header)
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "UNAUTHENTICATED") {
			t.Fatalf("the captured notice replayed to %s: %d %s", n.id, r.status, r.body)
		}
	}

	// Nothing captured works as a bearer token; the token itself does.
	values := []string{string(got.body)}
	for _, v := range body {
		if s, ok := v.(string); ok {
			values = append(values, s)
		}
	}
	for _, vs := range got.header {
		values = append(values, vs...)
	}
	for _, v := range values {
		if r := h16Do(t, http.MethodGet, n1.url+"/v1/decisions", nil, h16Bearer(v)); r.status != http.StatusUnauthorized {
			t.Fatalf("captured %q as a bearer token: GET /v1/decisions answered %d", v, r.status)
		}
	}
	if r := h16Do(t, http.MethodGet, n1.url+"/v1/decisions", nil, h16Bearer(h16Token)); r.status != http.StatusOK {
		t.Fatalf("the token itself: GET /v1/decisions answered %d %s", r.status, r.body)
	}
}

// 300 unauthenticated evaluations (more than --decisions-kept, 256) leave
// a real admission's decisions findable on the leader.
func TestHostile16EvaluationsKeepAdmissionTrail(t *testing.T) {
	t.Parallel()
	tokenFlags := h16TokenFlags(t)
	n1 := bootstrapNode(t, opts{id: "n1", extra: tokenFlags})
	n2 := startNode(t, opts{id: "n2", extra: tokenFlags})
	waitUp(t, n2)
	// A real admitd candidate: its fence opens on the leader's proof.
	d := h16Admit(t, n1, n2.candidate())
	waitFSM(t, n2, n1)

	facts, err := os.ReadFile("../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if r := h16Do(t, http.MethodPost, n1.url+"/v1/evaluate", facts, nil); r.status != http.StatusOK {
			t.Fatalf("evaluation %d: %d %s", i, r.status, r.body)
		}
	}
	if r := h16Do(t, http.MethodGet, n1.url+"/v1/decisions", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/decisions without the token: %d", r.status)
	}
	if l := waitLeader(t, n1, n2); l != n1 {
		t.Fatalf("leadership moved to %s; the decisions are in n1's memory", l.id)
	}

	r := h16Do(t, http.MethodGet, n1.url+"/v1/admissions/"+d.DecisionID, nil, h16Bearer(h16Token))
	var st struct {
		State     string     `json:"state"`
		Decisions []decision `json:"decisions"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != http.StatusOK || st.State != "admitted" ||
		!slices.ContainsFunc(st.Decisions, func(x decision) bool { return x.DecisionID == d.DecisionID }) {
		t.Fatalf("GET /v1/admissions/%s after 300 evaluations: %d %s", d.DecisionID, r.status, r.body)
	}
	if r := h16Do(t, http.MethodGet, n1.url+"/v1/decisions/"+d.DecisionID, nil, h16Bearer(h16Token)); r.status != http.StatusOK {
		t.Fatalf("GET /v1/decisions/%s after 300 evaluations: %d %s", d.DecisionID, r.status, r.body)
	}
	var list struct {
		Decisions []decision `json:"decisions"`
	}
	r = h16Do(t, http.MethodGet, n1.url+"/v1/decisions?limit=1000", nil, h16Bearer(h16Token))
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	// The default 256 evaluations, newest first, then the admission.
	if n := len(list.Decisions); n < 257 || list.Decisions[0].DecisionID == d.DecisionID ||
		!slices.ContainsFunc(list.Decisions[256:], func(x decision) bool { return x.DecisionID == d.DecisionID }) {
		t.Fatalf("GET /v1/decisions lists %d, want 256 evaluations then %s among the membership decisions", n, d.DecisionID)
	}
}
