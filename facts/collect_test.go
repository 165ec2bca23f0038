package facts

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGatherAllGood(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, goodState("n4")))
	cand := candidate(raftServer(t, "n4"), srv.URL)

	before := time.Now()
	doc := Gather(t.Context(), testConfig(), cand, soloView())

	if doc.Schema != Schema || doc.Candidate != cand {
		t.Fatalf("head: %+v", doc)
	}
	if doc.CollectedAt.Location() != time.UTC || doc.CollectedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("collected_at %v", doc.CollectedAt)
	}
	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if !r.Raft.OK || r.Raft.Attempts != 3 || r.Raft.Successes != 3 || r.Raft.Error != "" || r.Raft.RTTMS <= 0 {
		t.Fatalf("raft probe %+v", r.Raft)
	}
	if !r.RaftRPC.OK || r.RaftRPC.ID != "n4" || r.RaftRPC.Error != "" || r.RaftRPC.RTTMS <= 0 {
		t.Fatalf("raft rpc %+v", r.RaftRPC)
	}
	if !r.API.OK || r.API.Skipped || r.API.Status != 200 || r.API.Error != "" || r.API.RTTMS <= 0 {
		t.Fatalf("api probe %+v", r.API)
	}
	is := doc.InitState
	assertCollected(t, "init_state", is.Section)
	if is.NodeID != "n4" || is.Initialized || is.ClusterID != "" || is.Version != "0.1.0" {
		t.Fatalf("init_state %+v", is)
	}
	if !slices.Equal(is.Sources, []string{SourceRaft, SourceAPI}) || is.Raft != (RaftInit{ID: "n4", Term: 0, Granted: true}) {
		t.Fatalf("init_state sources %v, raft %+v", is.Sources, is.Raft)
	}
	tp := doc.Topology
	assertCollected(t, "topology", tp.Section)
	if tp.ClusterID != "c1" || tp.ConfigIndex != 7 || tp.Leader.ID != "n1" || len(tp.Servers) != 1 || !tp.Servers[0].Healthy {
		t.Fatalf("topology %+v", tp)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("candidate /v1/state fetched %d times, want 1", got)
	}
	// The document must survive its own strict decoder.
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBytes(raw); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestGatherRaftNotListening(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, goodState("n4")))
	doc := Gather(t.Context(), testConfig(), candidate(deadAddr(t), srv.URL), soloView())

	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if r.Raft.OK || r.Raft.Attempts != 3 || r.Raft.Successes != 0 || r.Raft.Error == "" {
		t.Fatalf("raft probe %+v", r.Raft)
	}
	if !r.API.OK {
		t.Fatalf("api probe %+v", r.API)
	}
}

func TestGatherAPIStatus500(t *testing.T) {
	srv := newStateServer(t, rawHandler(500, `{"error":{"code":"X","message":"boom"}}`))
	doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n4"), srv.URL), soloView())

	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if r.API.OK || r.API.Status != 500 || !strings.Contains(r.API.Error, "500") {
		t.Fatalf("api probe %+v", r.API)
	}
	if !r.Raft.OK || !r.RaftRPC.OK {
		t.Fatalf("raft probe %+v, raft rpc %+v", r.Raft, r.RaftRPC)
	}
	assertUncollected(t, "init_state", doc.InitState)
	if !strings.Contains(doc.InitState.Error, "500") {
		t.Fatalf("init_state error %q, want the API's 500", doc.InitState.Error)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("candidate /v1/state fetched %d times, want 1", got)
	}
}

func TestGatherRedirectNotFollowed(t *testing.T) {
	target := newStateServer(t, jsonHandler(200, goodState("n4")))
	srv := newStateServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+StatePath, http.StatusFound)
	})
	doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n4"), srv.URL), soloView())

	if api := doc.Reachability.API; api.OK || api.Status != http.StatusFound {
		t.Fatalf("api probe %+v", api)
	}
	assertUncollected(t, "init_state", doc.InitState)
	if !strings.Contains(doc.InitState.Error, "302") {
		t.Fatalf("init_state error %q, want the API's 302", doc.InitState.Error)
	}
	if got := target.hits.Load(); got != 0 {
		t.Fatalf("redirect followed %d times", got)
	}
}

// checkHungAPI is shared by the hanging cases: both sections end by their
// deadline, fail closed, and Gather is bounded by the overall deadline.
func checkHungAPI(t *testing.T, apiURL string) *Document {
	t.Helper()
	cfg := testConfig()
	start := time.Now()
	doc := Gather(t.Context(), cfg, candidate(raftServer(t, "n4"), apiURL), soloView())
	if elapsed := time.Since(start); elapsed > 2*cfg.Overall {
		t.Fatalf("Gather took %v, overall deadline %v", elapsed, cfg.Overall)
	}
	r := doc.Reachability
	if r.Collected {
		if r.API.OK || r.API.Error == "" || !r.Raft.OK || !r.RaftRPC.OK {
			t.Fatalf("reachability %+v", r)
		}
	} else {
		assertUncollected(t, "reachability", r)
	}
	assertUncollected(t, "init_state", doc.InitState)
	assertCollected(t, "topology", doc.Topology.Section)
	return doc
}

func TestGatherAPIHangs(t *testing.T) {
	h, unblock := blockingHandler(t)
	srv := newStateServer(t, h)
	t.Cleanup(unblock)
	checkHungAPI(t, srv.URL)
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("candidate /v1/state fetched %d times, want 1", got)
	}
}

func TestGatherAPIAcceptsButNeverAnswers(t *testing.T) {
	checkHungAPI(t, "http://"+silentListener(t))
}

func TestGatherBadBodies(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"not json", "<html>hello</html>", "invalid JSON"},
		{"wrong types", `{"node_id":"n4","initialized":"no","cluster_id":"","last_index":0,"last_term":0}`, "initialized"},
		{"negative index", `{"node_id":"n4","initialized":false,"cluster_id":"","last_index":-1,"last_term":0}`, "last_index"},
		{"missing initialized", `{"node_id":"n4","cluster_id":"","last_index":0,"last_term":0}`, "missing or null: initialized"},
		{"empty", ``, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStateServer(t, rawHandler(200, tc.body))
			// A real raft server answers, so the API's body alone is what
			// leaves init_state uncollected.
			doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n4"), srv.URL), soloView())

			r := doc.Reachability
			assertCollected(t, "reachability", r.Section)
			if !r.RaftRPC.OK || r.RaftRPC.ID != "n4" {
				t.Fatalf("raft rpc %+v", r.RaftRPC)
			}
			if r.API.OK || r.API.Status != 200 || !strings.Contains(r.API.Error, tc.want) {
				t.Fatalf("api probe %+v, want error containing %q", r.API, tc.want)
			}
			assertUncollected(t, "init_state", doc.InitState)
			if !strings.Contains(doc.InitState.Error, tc.want) {
				t.Fatalf("init_state error %q, want %q", doc.InitState.Error, tc.want)
			}
		})
	}
}

func TestGatherHugeBody(t *testing.T) {
	srv := newStateServer(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(`{"node_id":"` + strings.Repeat("a", 1<<16))
		for written := 0; written < 10<<20; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client stopped reading, as it should
			}
		}
	})
	doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n4"), srv.URL), soloView())

	if rpc := doc.Reachability.RaftRPC; !rpc.OK || rpc.ID != "n4" {
		t.Fatalf("raft rpc %+v", rpc)
	}
	assertUncollected(t, "init_state", doc.InitState)
	if !strings.Contains(doc.InitState.Error, "too large") {
		t.Fatalf("init_state error %q", doc.InitState.Error)
	}
	if api := doc.Reachability.API; api.OK || !strings.Contains(api.Error, "too large") {
		t.Fatalf("api probe %+v", api)
	}
}

func TestGatherInvalidCandidate(t *testing.T) {
	doc := Gather(t.Context(), testConfig(), Candidate{ID: "n4", RaftAddr: "nope", APIURL: "file:///etc/passwd"}, soloView())
	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if r.Raft.OK || r.Raft.Attempts != 0 || !strings.Contains(r.Raft.Error, "raft_addr") {
		t.Fatalf("raft probe %+v", r.Raft)
	}
	if r.RaftRPC.OK || r.RaftRPC.ID != "" || !strings.Contains(r.RaftRPC.Error, "raft_addr") {
		t.Fatalf("raft rpc %+v", r.RaftRPC)
	}
	if r.API.OK || !strings.Contains(r.API.Error, "api_url") {
		t.Fatalf("api probe %+v", r.API)
	}
	assertUncollected(t, "init_state", doc.InitState)
}

func TestGatherCanceledContext(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, goodState("n4")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	doc := Gather(ctx, testConfig(), candidate(raftListener(t), srv.URL), soloView())
	assertUncollected(t, "reachability", doc.Reachability)
	assertUncollected(t, "init_state", doc.InitState)
	// Topology may or may not notice: the fake view ignores ctx and its
	// members list has no one to call.
	if doc.Topology == nil {
		t.Fatal("nil topology")
	}
}

func TestRunSectionIgnoresContext(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	got := runSection(t.Context(), 50*time.Millisecond, func(context.Context) (*InitState, error) {
		<-block
		return &InitState{NodeID: "late"}, nil
	})
	assertUncollected(t, "init_state", got)
	if !strings.Contains(got.Error, "timeout after 50ms") || got.DurationMS <= 0 {
		t.Fatalf("got %+v", got.Section)
	}
}

func TestRunSectionPanicAndNil(t *testing.T) {
	got := runSection(t.Context(), time.Second, func(context.Context) (*Topology, error) {
		panic("boom")
	})
	assertUncollected(t, "panic", got)
	got = runSection(t.Context(), time.Second, func(context.Context) (*Topology, error) {
		return nil, nil
	})
	assertUncollected(t, "nil", got)
}

func TestWithDefaults(t *testing.T) {
	c := CollectConfig{}.withDefaults()
	if c.Overall != 3*time.Second || c.Reachability != 1500*time.Millisecond || c.InitState != 1500*time.Millisecond ||
		c.Topology != 1500*time.Millisecond || c.RaftDialAttempts != 3 || c.DialTimeout != 500*time.Millisecond ||
		c.MaxStateBytes != 64<<10 || c.HTTPClient == nil || c.HTTPClient.CheckRedirect == nil {
		t.Fatalf("defaults %+v", c)
	}
	custom := &http.Client{}
	if got := (CollectConfig{HTTPClient: custom, RaftDialAttempts: 5}).withDefaults(); got.HTTPClient != custom || got.RaftDialAttempts != 5 {
		t.Fatalf("overrides lost: %+v", got)
	}
}
