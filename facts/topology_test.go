package facts

import (
	"strings"
	"testing"
	"time"
)

func memberServer(t *testing.T, st NodeState) string {
	return newStateServer(t, jsonHandler(200, st)).URL
}

func member(id, cluster string, term uint64) NodeState {
	s := goodState(id)
	s.Initialized, s.ClusterID, s.Term, s.PolicyRevision = true, cluster, term, "rev-"+id
	return s
}

func TestTopologyHealth(t *testing.T) {
	const cluster, term = "c1", 5
	cs := func(id string, suffrage Suffrage, url string) ConfigServer {
		return ConfigServer{ID: id, Address: "127.0.0.1:1", Suffrage: suffrage, APIURL: url}
	}
	view := &fakeView{cfg: ClusterConfig{
		ClusterID: cluster, Index: 42, Term: term, SelfID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7401",
		Servers: []ConfigServer{
			cs("n1", Voter, ""), // the leader itself
			cs("n2", Voter, memberServer(t, member("n2", cluster, term))),
			cs("n3", Voter, memberServer(t, member("n3", cluster, term-1))), // another term
			cs("n4", Voter, ""), // no API URL
			cs("n5", Voter, memberServer(t, member("n5", "other", term))),       // another cluster
			cs("n6", Voter, memberServer(t, member("imposter", cluster, term))), // answers as someone else
			cs("n7", Voter, newStateServer(t, rawHandler(500, "")).URL),
			cs("n8", Nonvoter, memberServer(t, member("n8", cluster, term))),
		},
	}}
	doc := Gather(t.Context(), testConfig(), candidate(raftListener(t), memberServer(t, goodState("n9"))), view)

	tp := doc.Topology
	assertCollected(t, "topology", tp.Section)
	if tp.ClusterID != cluster || tp.ConfigIndex != 42 || tp.Leader.ID != "n1" || tp.Leader.Address != "127.0.0.1:7401" {
		t.Fatalf("topology head %+v", tp)
	}
	want := map[string]struct {
		healthy  bool
		revision string
	}{
		"n1": {true, ""}, "n2": {true, "rev-n2"}, "n3": {false, "rev-n3"}, "n4": {false, ""},
		"n5": {false, "rev-n5"}, "n6": {false, ""}, "n7": {false, ""}, "n8": {true, "rev-n8"},
	}
	if len(tp.Servers) != len(want) {
		t.Fatalf("servers %+v", tp.Servers)
	}
	for i, s := range tp.Servers {
		w := want[s.ID]
		if s.ID != view.cfg.Servers[i].ID || s.Suffrage != view.cfg.Servers[i].Suffrage {
			t.Fatalf("server %d out of order or suffrage lost: %+v", i, s)
		}
		if s.Healthy != w.healthy || s.PolicyRevision != w.revision {
			t.Errorf("%s: healthy=%v rev=%q, want %v %q", s.ID, s.Healthy, s.PolicyRevision, w.healthy, w.revision)
		}
	}
}

// A member that answers as itself in the leader's term but cannot keep up
// (a full disk: it logs "failed to append" and falls behind) is not
// healthy; one within MaxMemberLag is.
func TestTopologyLaggingMemberUnhealthy(t *testing.T) {
	const cluster, term, leaderLast = "c1", 5, 5000
	at := func(id string, last uint64) ConfigServer {
		st := member(id, cluster, term)
		st.LastIndex = last
		return ConfigServer{ID: id, Address: "127.0.0.1:1", Suffrage: Voter, APIURL: memberServer(t, st)}
	}
	view := &fakeView{cfg: ClusterConfig{
		ClusterID: cluster, Index: 42, Term: term, SelfID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7401",
		LastIndex: leaderLast,
		Servers:   []ConfigServer{{ID: "n1", Address: "127.0.0.1:7401", Suffrage: Voter}, at("n2", leaderLast-10), at("n3", leaderLast-1292)},
	}}
	cfg := testConfig()
	cfg.MaxMemberLag = 1000
	tp := GatherTopology(t.Context(), cfg, view)
	assertCollected(t, "topology", tp.Section)
	for _, s := range tp.Servers {
		want := map[string]bool{"n1": true, "n2": true, "n3": false}[s.ID]
		if s.Healthy != want {
			t.Errorf("%s: healthy %v with lag %d, want %v", s.ID, s.Healthy, s.Lag, want)
		}
	}
	if n3 := tp.Servers[2]; n3.Lag != 1292 || n3.LastIndex != leaderLast-1292 {
		t.Errorf("n3 lag %d last %d", n3.Lag, n3.LastIndex)
	}
}

func TestTopologyFollowerChecksLeader(t *testing.T) {
	// Collected on a follower: the leader is a remote member like any other.
	view := &fakeView{cfg: ClusterConfig{
		ClusterID: "c1", Index: 3, Term: 2, SelfID: "n2", LeaderID: "n1",
		Servers: []ConfigServer{{ID: "n1", Suffrage: Voter, APIURL: memberServer(t, member("n1", "c1", 1))}},
	}}
	doc := Gather(t.Context(), testConfig(), candidate(raftListener(t), memberServer(t, goodState("n4"))), view)
	if s := doc.Topology.Servers; len(s) != 1 || s[0].Healthy {
		t.Fatalf("servers %+v", s)
	}
}

func TestTopologyViewError(t *testing.T) {
	doc := Gather(t.Context(), testConfig(), candidate(raftServer(t, "n4"), memberServer(t, goodState("n4"))), &fakeView{err: errView})
	assertUncollected(t, "topology", doc.Topology)
	if !strings.Contains(doc.Topology.Error, errView.Error()) {
		t.Fatalf("error %q", doc.Topology.Error)
	}
	assertCollected(t, "init_state", doc.InitState.Section)
}

func TestTopologyNilView(t *testing.T) {
	doc := Gather(t.Context(), testConfig(), candidate(raftListener(t), memberServer(t, goodState("n4"))), nil)
	assertUncollected(t, "topology", doc.Topology)
	if doc.Topology.Error != "no cluster view" {
		t.Fatalf("error %q", doc.Topology.Error)
	}
}

func TestTopologyViewIgnoresContext(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	cfg := testConfig()
	start := time.Now()
	doc := Gather(t.Context(), cfg, candidate(raftListener(t), memberServer(t, goodState("n4"))), &fakeView{block: block})
	if elapsed := time.Since(start); elapsed > 2*cfg.Overall {
		t.Fatalf("Gather took %v", elapsed)
	}
	assertUncollected(t, "topology", doc.Topology)
	if !strings.Contains(doc.Topology.Error, "timeout") {
		t.Fatalf("error %q", doc.Topology.Error)
	}
	assertCollected(t, "reachability", doc.Reachability.Section)
}

func TestTopologyHungMember(t *testing.T) {
	h, unblock := blockingHandler(t)
	hung := newStateServer(t, h)
	t.Cleanup(unblock)
	view := &fakeView{cfg: ClusterConfig{
		ClusterID: "c1", Term: 2, SelfID: "n1", LeaderID: "n1",
		Servers: []ConfigServer{
			{ID: "n1", Suffrage: Voter},
			{ID: "n2", Suffrage: Voter, APIURL: hung.URL},
		},
	}}
	doc := Gather(t.Context(), testConfig(), candidate(raftListener(t), memberServer(t, goodState("n4"))), view)
	// The probe reserve lets a hung member be reported as unhealthy rather
	// than losing the whole section; either outcome fails closed.
	if tp := doc.Topology; tp.Collected {
		if len(tp.Servers) != 2 || !tp.Servers[0].Healthy || tp.Servers[1].Healthy {
			t.Fatalf("servers %+v", tp.Servers)
		}
	} else {
		assertUncollected(t, "topology", tp)
	}
}
