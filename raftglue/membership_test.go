package raftglue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

func mustConfig(t *testing.T, n *Node) facts.ClusterConfig {
	t.Helper()
	cc, err := n.ClusterConfig(testCtx(t))
	if err != nil {
		t.Fatalf("cluster config on %s: %v", n.ID(), err)
	}
	return cc
}

func TestAddVoterPrevIndex(t *testing.T) {
	leader := bootstrapNode(t, testConfig(t, "n1"))
	n2 := openNode(t, testConfig(t, "n2"))
	n3 := openNode(t, testConfig(t, "n3"))
	ctx := testCtx(t)
	stale := mustConfig(t, leader).Index

	if _, err := leader.addVoter(ctx, "n2", n2.Addr(), n2.APIURL(), stale); err != nil {
		t.Fatalf("add n2 at %d: %v", stale, err)
	}
	// The configuration moved on: facts read at `stale` must not add n3.
	_, err := leader.addVoter(ctx, "n3", n3.Addr(), n3.APIURL(), stale)
	if !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("add n3 at stale %d: %v, want ErrConfigChanged", stale, err)
	}
	if _, ok, _ := leader.HasMember(ctx, "n3", ""); ok {
		t.Fatal("n3 added despite stale prevIndex")
	}
	current := mustConfig(t, leader).Index
	index, err := leader.addVoter(ctx, "n3", n3.Addr(), n3.APIURL(), current)
	if err != nil {
		t.Fatalf("add n3 at %d: %v", current, err)
	}
	if suf, ok, err := leader.HasMember(ctx, "n3", n3.Addr()); err != nil || !ok || suf != facts.Voter {
		t.Fatalf("HasMember n3 = %q %v %v", suf, ok, err)
	}
	if got := mustConfig(t, leader).Index; got != index {
		t.Fatalf("config index %d, want the add's index %d", got, index)
	}
	if _, err := leader.addVoter(ctx, "n4", "127.0.0.1:1", "", 0); !errors.Is(err, ErrNoPrevIndex) {
		t.Fatalf("prevIndex 0: %v, want ErrNoPrevIndex", err)
	}
}

func TestAddVoterZeroGrant(t *testing.T) {
	leader := bootstrapNode(t, testConfig(t, "n1"))
	before := mustConfig(t, leader)
	for name, add := range map[string]func(context.Context, admission.Grant) (uint64, error){
		"AddVoter": leader.AddVoter, "AddNonvoter": leader.AddNonvoter,
	} {
		if _, err := add(testCtx(t), admission.Grant{}); !errors.Is(err, ErrNotGranted) {
			t.Fatalf("%s(zero grant): %v, want ErrNotGranted", name, err)
		}
	}
	after := mustConfig(t, leader)
	if after.Index != before.Index || len(after.Servers) != 1 {
		t.Fatalf("configuration changed: %+v -> %+v", before, after)
	}
}

func TestClusterConfig(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := nodes[0]
	if _, err := nodes[1].ClusterConfig(testCtx(t)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower ClusterConfig: %v, want ErrNotLeader", err)
	}
	n4 := openNode(t, testConfig(t, "n4"))
	cc := mustConfig(t, leader)
	index, err := leader.stageNonvoter(testCtx(t), candidateOf(n4), "adm", cc.Index)
	if err != nil {
		t.Fatal(err)
	}
	cc = mustConfig(t, leader)
	if cc.Index != index || cc.ClusterID != leader.ClusterID() || cc.SelfID != "n1" ||
		cc.LeaderID != "n1" || cc.LeaderAddr != leader.Addr() || cc.Term != leader.Term() || cc.Term == 0 {
		t.Fatalf("config %+v, want index %d, leader n1@%s", cc, index, leader.Addr())
	}
	want := map[string]facts.ConfigServer{}
	for _, n := range append(nodes, n4) {
		want[n.ID()] = facts.ConfigServer{ID: n.ID(), Address: n.Addr(), Suffrage: facts.Voter, APIURL: n.APIURL()}
	}
	w := want["n4"]
	w.Suffrage = facts.Nonvoter
	want["n4"] = w
	if len(cc.Servers) != len(want) {
		t.Fatalf("servers %+v, want %d", cc.Servers, len(want))
	}
	for _, s := range cc.Servers {
		if s != want[s.ID] {
			t.Errorf("server %+v, want %+v", s, want[s.ID])
		}
	}
}

func TestRemoveServerTombstone(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := nodes[0]
	ctx := testCtx(t)
	if _, err := leader.removeServer(ctx, "n3", 0, opTombstone); !errors.Is(err, ErrNoPrevIndex) {
		t.Fatalf("remove at 0: %v, want ErrNoPrevIndex", err)
	}
	if _, err := leader.removeServer(ctx, "n3", mustConfig(t, leader).Index, opTombstone); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := leader.HasMember(ctx, "n3", ""); ok {
		t.Fatal("n3 still a member")
	}
	eventually(t, "n2 sees tombstone", func() bool { ts := nodes[1].Tombstones(); return len(ts) == 1 && ts[0] == "n3" })
	if _, ok := leader.Members()["n3"]; ok {
		t.Fatal("removed member keeps metadata")
	}
	if err := leader.ClearTombstone(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 sees tombstone cleared", func() bool { return len(nodes[1].Tombstones()) == 0 })
}

// With n2 down and n3 never started, the enlarged configuration has one
// live voter of three: the change must come back as a timeout or a lost
// leadership, never as success.
func TestAddVoterWithoutQuorum(t *testing.T) {
	nodes := startCluster(t, 2)
	leader := nodes[0]
	index := mustConfig(t, leader).Index
	if err := nodes[1].Shutdown(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := leader.addVoter(ctx, "n3", deadAddr(t), "", index)
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("add without quorum: %v, want ErrTimeout or ErrLeadershipLost", err)
	}
	t.Logf("add without quorum: %v", err)
	// Nothing can commit now, so a leader cannot confirm the change.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	if _, _, err := leader.HasMember(ctx2, "n3", ""); err == nil && leader.IsLeader() {
		t.Fatal("leader confirmed membership without a quorum")
	}
}

// deadAddr is a local address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestMapError(t *testing.T) {
	changed := fmt.Errorf("configuration changed since %v (latest is %v)", 3, 7)
	cases := []struct {
		in   error
		want []error
	}{
		{nil, nil},
		{changed, []error{ErrConfigChanged}},
		{raft.ErrNotLeader, []error{ErrLeadershipLost, ErrNotLeader, raft.ErrNotLeader}},
		{raft.ErrLeadershipLost, []error{ErrLeadershipLost, raft.ErrLeadershipLost}},
		{raft.ErrLeadershipTransferInProgress, []error{ErrLeadershipLost}},
		{raft.ErrRaftShutdown, []error{ErrLeadershipLost, raft.ErrRaftShutdown}},
		{raft.ErrEnqueueTimeout, []error{ErrTimeout}},
		{fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded), []error{ErrTimeout, context.DeadlineExceeded}},
	}
	for _, c := range cases {
		got := mapError(c.in)
		if (got == nil) != (c.in == nil) {
			t.Errorf("mapError(%v) = %v", c.in, got)
		}
		for _, w := range c.want {
			if !errors.Is(got, w) {
				t.Errorf("mapError(%v) = %v, want it to wrap %v", c.in, got, w)
			}
		}
	}
	if errors.Is(mapError(changed), ErrLeadershipLost) || errors.Is(mapError(raft.ErrNotLeader), ErrConfigChanged) {
		t.Error("mapping leaks into the wrong sentinel")
	}
	other := errors.New("found duplicate address in configuration")
	if got := mapError(other); got != other {
		t.Errorf("unrelated error mapped to %v", got)
	}
}
