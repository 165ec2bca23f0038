package facts

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// raftOnlyConfig is testConfig with an HTTP client that fails and counts
// every request, so a test can prove a raft-only collection made none.
func raftOnlyConfig() (CollectConfig, *countingTransport) {
	rt := &countingTransport{}
	cfg := testConfig()
	cfg.HTTPClient = &http.Client{Transport: rt}
	return cfg, rt
}

// assertAPISkipped checks a raft-only candidate's API probe says skipped
// and nothing else.
func assertAPISkipped(t *testing.T, api APIProbe) {
	t.Helper()
	want := APIProbe{Skipped: true, TLS: TLSInfo{URIs: []string{}, DNSNames: []string{}}}
	if !reflect.DeepEqual(api, want) {
		t.Fatalf("api probe %+v, want only skipped", api)
	}
}

func assertNoHTTP(t *testing.T, rt *countingTransport) {
	t.Helper()
	if n := rt.calls.Load(); n != 0 {
		t.Fatalf("%d HTTP requests made, want none", n)
	}
}

func TestGatherRaftOnlyFresh(t *testing.T) {
	cfg, rt := raftOnlyConfig()
	cand := Candidate{ID: "n4", RaftAddr: raftServer(t, "n4")}
	doc := Gather(t.Context(), cfg, cand, soloView())

	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	assertAPISkipped(t, r.API)
	if !r.Raft.OK || r.Raft.Successes != r.Raft.Attempts {
		t.Fatalf("raft probe %+v", r.Raft)
	}
	if !r.RaftRPC.OK || r.RaftRPC.ID != "n4" || r.RaftRPC.Error != "" || r.RaftRPC.RTTMS <= 0 {
		t.Fatalf("raft rpc %+v", r.RaftRPC)
	}
	is := doc.InitState
	assertCollected(t, "init_state", is.Section)
	if !slices.Equal(is.Sources, []string{SourceRaft}) {
		t.Fatalf("sources %v, want [raft]", is.Sources)
	}
	if is.Raft != (RaftInit{ID: "n4", Term: 0, Granted: true}) {
		t.Fatalf("init_state.raft %+v, want a fresh node's answer", is.Raft)
	}
	if is.NodeID != "n4" || is.Initialized || is.ClusterID != "" || is.LastIndex != 0 || is.LastTerm != 0 || is.Version != "" {
		t.Fatalf("init_state %+v", is)
	}
	assertCollected(t, "topology", doc.Topology.Section)
	assertNoHTTP(t, rt)
}

func TestGatherRaftOnlyBootstrapped(t *testing.T) {
	cfg, rt := raftOnlyConfig()
	n := newRPCProbeNode(t, "n4")
	rpcProbeCluster(t, n)
	term, last := n.r.CurrentTerm(), n.r.LastIndex()
	doc := Gather(t.Context(), cfg, Candidate{ID: "n4", RaftAddr: n.addr()}, soloView())

	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	assertAPISkipped(t, r.API)
	if !r.RaftRPC.OK || r.RaftRPC.ID != "n4" {
		t.Fatalf("raft rpc %+v", r.RaftRPC)
	}
	is := doc.InitState
	assertCollected(t, "init_state", is.Section)
	if !slices.Equal(is.Sources, []string{SourceRaft}) {
		t.Fatalf("sources %v, want [raft]", is.Sources)
	}
	if is.Raft.ID != "n4" || is.Raft.Term == 0 || is.Raft.Granted || !is.Raft.LastIndexKnown {
		t.Fatalf("init_state.raft %+v, want a refusal with a term and a last index", is.Raft)
	}
	if is.Raft.Term != term || is.Raft.LastIndex != last || last == 0 {
		t.Fatalf("init_state.raft %+v, node at term %d index %d", is.Raft, term, last)
	}
	if is.NodeID != "n4" || !is.Initialized || is.LastIndex != last {
		t.Fatalf("init_state %+v", is)
	}
	assertNoHTTP(t, rt)
}

// A raft address that accepts connections but never speaks raft: the TCP
// probe succeeds, the raft probe fails, and init_state is not collected
// though the API answered well - the raft source did not answer, so
// nothing in the section may read as a fresh node.
func TestGatherRaftSilentListener(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, goodState("n4")))
	cfg := testConfig()
	// The silent probe runs to the end of its budget; room enough that
	// reachability reports it before its own deadline.
	cfg.Overall, cfg.Reachability, cfg.InitState = 4*time.Second, 2*time.Second, 2*time.Second
	start := time.Now()
	doc := Gather(t.Context(), cfg, candidate(silentListener(t), srv.URL), soloView())
	if elapsed := time.Since(start); elapsed > 2*cfg.Overall {
		t.Fatalf("Gather took %v, overall deadline %v", elapsed, cfg.Overall)
	}

	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if !r.Raft.OK || r.Raft.Successes != r.Raft.Attempts {
		t.Fatalf("raft probe %+v, want the TCP handshakes to succeed", r.Raft)
	}
	if r.RaftRPC.OK || r.RaftRPC.Error == "" || r.RaftRPC.ID != "" || r.RaftRPC.RTTMS != 0 {
		t.Fatalf("raft rpc %+v, want no answer and an error", r.RaftRPC)
	}
	if !r.API.OK {
		t.Fatalf("api probe %+v", r.API)
	}
	assertUncollected(t, "init_state", doc.InitState)
	if !strings.Contains(doc.InitState.Error, "raft probe") {
		t.Fatalf("init_state error %q, want the raft probe's", doc.InitState.Error)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("candidate /v1/state fetched %d times, want 1", got)
	}
}

// Whoever holds the raft address answers as itself; the facts say who.
func TestGatherRaftAnswersAsAnotherID(t *testing.T) {
	t.Run("raft only", func(t *testing.T) {
		cfg, rt := raftOnlyConfig()
		doc := Gather(t.Context(), cfg, Candidate{ID: "n4", RaftAddr: raftServer(t, "n9")}, soloView())
		if rpc := doc.Reachability.RaftRPC; !rpc.OK || rpc.ID != "n9" {
			t.Fatalf("raft rpc %+v, want id n9", rpc)
		}
		is := doc.InitState
		assertCollected(t, "init_state", is.Section)
		if is.Raft.ID != "n9" || is.NodeID != "n9" {
			t.Fatalf("init_state %+v, want node_id and raft.id n9", is)
		}
		assertNoHTTP(t, rt)
	})
	t.Run("with api", func(t *testing.T) {
		srv := newStateServer(t, jsonHandler(200, goodState("n4")))
		doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n9"), srv.URL), soloView())
		if rpc := doc.Reachability.RaftRPC; !rpc.OK || rpc.ID != "n9" {
			t.Fatalf("raft rpc %+v, want id n9", rpc)
		}
		is := doc.InitState
		assertCollected(t, "init_state", is.Section)
		if is.Raft.ID != "n9" || is.NodeID != "n4" {
			t.Fatalf("init_state %+v, want raft.id n9 beside the API's node_id n4", is)
		}
	})
}

// A raft-only candidate's document must survive its own strict decoder,
// as every gathered document does (TestGatherAllGood): it is what
// `admitd eval` and the server's document endpoint read back.
func TestGatherRaftOnlyDocumentDecodes(t *testing.T) {
	cfg, _ := raftOnlyConfig()
	doc := Gather(t.Context(), cfg, Candidate{ID: "n4", RaftAddr: raftServer(t, "n4")}, soloView())
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeBytes(raw)
	if err != nil {
		t.Fatalf("round trip of a raft-only candidate's document: %v", err)
	}
	if d.Doc.Candidate.APIURL != "" || !d.Doc.Reachability.API.Skipped {
		t.Fatalf("decoded %+v", d.Doc)
	}
}

// stagedRaftOnly is a one-voter cluster whose leader n1 has n4, a
// raft-only candidate, staged as a non-voter that has caught up.
func stagedRaftOnly(t *testing.T) (leader, cand *rpcProbeNode) {
	t.Helper()
	leader = newRPCProbeNode(t, "n1")
	rpcProbeCluster(t, leader)
	cand = newRPCProbeNode(t, "n4")
	joinNonvoter(t, leader, cand)
	return leader, cand
}

func TestGatherPromoteRaftOnlyFollower(t *testing.T) {
	leader, follower := stagedRaftOnly(t)
	cand := Candidate{ID: follower.id, RaftAddr: follower.addr()}
	view := raftView("c1", leader, ConfigServer{ID: cand.ID, Address: cand.RaftAddr, Suffrage: Nonvoter})
	view.cfg.Staged = []string{cand.ID}
	log := raftLeaderLog{leader: leader, clusterID: "c1"}
	leaderLast, leaderTerm, followerLast := leader.r.LastIndex(), leader.r.CurrentTerm(), follower.r.LastIndex()
	cfg, rt := raftOnlyConfig()
	s := &streak{for_: 11 * time.Second}
	st := s.staging(time.Now().Add(-20 * time.Second))

	doc := GatherPromote(t.Context(), cfg, cand, view, log, st)
	if doc.Phase != PhasePromote || doc.InitState != nil {
		t.Fatalf("phase %q, init_state %+v: want promote without init_state", doc.Phase, doc.InitState)
	}
	r := doc.Reachability
	assertCollected(t, "reachability", r.Section)
	assertAPISkipped(t, r.API)
	if !r.RaftRPC.OK || r.RaftRPC.ID != "n4" {
		t.Fatalf("raft rpc %+v", r.RaftRPC)
	}
	c := doc.CatchUp
	assertCollected(t, "catch_up", c.Section)
	if !slices.Equal(c.Sources, []string{SourceRaft}) {
		t.Fatalf("sources %v, want [raft]", c.Sources)
	}
	if c.LeaderLastIndex != leaderLast || c.LeaderTerm != leaderTerm || c.LastIndex != followerLast || c.LastTerm != leaderTerm {
		t.Fatalf("catch_up %+v; leader at %d term %d, follower at %d", c, leaderLast, leaderTerm, followerLast)
	}
	if c.Lag != leaderLast-followerLast || c.LastContactMS <= 0 {
		t.Fatalf("catch_up lag %d, last_contact %v", c.Lag, c.LastContactMS)
	}
	if c.HealthyForMS != 11000 || c.StagedForMS < 20000 || c.StagedForMS > 30000 {
		t.Fatalf("healthy_for %v, staged_for %v", c.HealthyForMS, c.StagedForMS)
	}
	if !slices.Equal(s.seen, []bool{true}) {
		t.Fatalf("observed %v, want one healthy sample", s.seen)
	}
	tp := doc.Topology
	assertCollected(t, "topology", tp.Section)
	if len(tp.Servers) != 2 || !tp.Servers[0].Healthy || !tp.Servers[1].Healthy || !slices.Equal(tp.Staged, []string{"n4"}) {
		t.Fatalf("topology %+v", tp)
	}

	// A leader five entries ahead of the follower's real last index.
	ahead := fakeLog{"c1", followerLast + 5, leaderTerm}
	doc = GatherPromote(t.Context(), cfg, cand, view, ahead, st)
	if c := doc.CatchUp; !c.Collected || c.LastIndex != followerLast || c.Lag != 5 || c.HealthyForMS != 11000 {
		t.Fatalf("catch_up behind a leader ahead by 5: %+v", c)
	}
	assertNoHTTP(t, rt)

	// Stopped, it answers nothing: no catch-up facts, the streak ends.
	follower.stop()
	doc = GatherPromote(t.Context(), cfg, cand, view, log, st)
	assertUncollected(t, "catch_up", doc.CatchUp)
	if !slices.Equal(s.seen, []bool{true, true, false}) {
		t.Fatalf("observed %v, want the streak broken by the stopped candidate", s.seen)
	}
	r = doc.Reachability
	assertCollected(t, "reachability", r.Section)
	if r.Raft.OK || r.RaftRPC.OK || r.RaftRPC.Error == "" {
		t.Fatalf("reachability of a stopped candidate %+v", r)
	}
	if tp := doc.Topology; len(tp.Servers) != 2 || tp.Servers[1].Healthy {
		t.Fatalf("topology with a stopped staged member %+v", tp.Servers)
	}
	assertNoHTTP(t, rt)
}

// A raft-only staged candidate that has not heard from the leader, or
// whose address answers as another node, gives no catch-up facts and
// breaks its streak.
func TestGatherPromoteRaftOnlyFailures(t *testing.T) {
	leader := newRPCProbeNode(t, "n1")
	rpcProbeCluster(t, leader)
	other := newRPCProbeNode(t, "n9")
	joinNonvoter(t, leader, other)
	log := raftLeaderLog{leader: leader, clusterID: "c1"}
	cases := map[string]struct {
		addr, want string
	}{
		"never joined":            {raftServer(t, "n4"), "last index"},
		"answers as another node": {other.addr(), `"n9"`},
		"nothing listening":       {deadAddr(t), "raft probe"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, rt := raftOnlyConfig()
			s := &streak{for_: time.Hour}
			cand := Candidate{ID: "n4", RaftAddr: tc.addr}
			doc := GatherPromote(t.Context(), cfg, cand, raftView("c1", leader), log, s.staging(time.Now()))
			assertUncollected(t, "catch_up", doc.CatchUp)
			if !strings.Contains(doc.CatchUp.Error, tc.want) {
				t.Fatalf("catch_up error %q, want %q", doc.CatchUp.Error, tc.want)
			}
			if !slices.Equal(s.seen, []bool{false}) {
				t.Fatalf("observed %v, want one unhealthy sample", s.seen)
			}
			assertNoHTTP(t, rt)
		})
	}
}

// Members without an API URL are judged by their raft server's answer:
// healthy only as themselves in the leader's term.
func TestTopologyRaftOnlyMembers(t *testing.T) {
	leader := newRPCProbeNode(t, "t1")
	rpcProbeCluster(t, leader)
	live, stopped := newRPCProbeNode(t, "t2"), newRPCProbeNode(t, "t3")
	joinNonvoter(t, leader, live)
	joinNonvoter(t, leader, stopped)
	stoppedAddr := stopped.addr()
	stopped.stop()
	fresh := raftServer(t, "t5")

	view := raftView("c1", leader,
		ConfigServer{ID: "t2", Address: live.addr(), Suffrage: Nonvoter},
		ConfigServer{ID: "t3", Address: stoppedAddr, Suffrage: Nonvoter},
		ConfigServer{ID: "t9", Address: live.addr(), Suffrage: Nonvoter}, // t2 answers there
		ConfigServer{ID: "t5", Address: fresh, Suffrage: Nonvoter},       // never joined: term 0
	)
	cfg, rt := raftOnlyConfig()
	tp := GatherTopology(t.Context(), cfg, view)
	assertCollected(t, "topology", tp.Section)
	want := map[string]bool{"t1": true, "t2": true, "t3": false, "t9": false, "t5": false}
	if len(tp.Servers) != len(want) {
		t.Fatalf("servers %+v", tp.Servers)
	}
	for i, s := range tp.Servers {
		if s.ID != view.cfg.Servers[i].ID || s.Healthy != want[s.ID] || s.PolicyRevision != "" {
			t.Errorf("server %d: %+v, want %s healthy=%v", i, s, view.cfg.Servers[i].ID, want[view.cfg.Servers[i].ID])
		}
	}

	// The same live member against a view of another term is not healthy.
	view.cfg.Term++
	tp = GatherTopology(t.Context(), cfg, view)
	if len(tp.Servers) != len(want) || tp.Servers[1].ID != "t2" || tp.Servers[1].Healthy {
		t.Fatalf("servers in another term %+v", tp.Servers)
	}
	assertNoHTTP(t, rt)
}
