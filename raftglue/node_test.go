package raftglue

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/raft"
)

func TestBootstrapSingleNode(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	if !n.IsLeader() || n.State() != "Leader" || n.LeaderID() != "n1" || n.LeaderAddr() != n.Addr() {
		t.Fatalf("state=%s leader=%s@%s, want n1 leading at %s", n.State(), n.LeaderID(), n.LeaderAddr(), n.Addr())
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(n.ClusterID()) {
		t.Fatalf("cluster id %q is not 32 hex chars", n.ClusterID())
	}
	if !n.Initialized() || n.Term() == 0 || n.LastIndex() == 0 || n.LastTerm() == 0 {
		t.Fatalf("initialized=%v term=%d last=%d/%d", n.Initialized(), n.Term(), n.LastIndex(), n.LastTerm())
	}
	if got := n.Members()["n1"].APIURL; got != n.APIURL() {
		t.Fatalf("self api url %q, want %q", got, n.APIURL())
	}
}

func TestOpenResolvesPortZero(t *testing.T) {
	n := openNode(t, testConfig(t, "n1"))
	if regexp.MustCompile(`:0$`).MatchString(n.Addr()) {
		t.Fatalf("advertised %q, want the bound port", n.Addr())
	}
	if n.Initialized() {
		t.Fatal("fresh node reports initialized")
	}
}

func TestThreeNodeReplication(t *testing.T) {
	nodes := startCluster(t, 3)
	if err := put(nodes[0], testCtx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, n.ID()+" has k=v", func() bool { v, _ := get(n, "k"); return v == "v" })
		if got := len(n.Members()); got != 3 {
			t.Errorf("%s sees %d members, want 3", n.ID(), got)
		}
	}
	if err := put(nodes[1], testCtx(t), "k", "x"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("put on follower: %v, want ErrNotLeader", err)
	}
	// Metadata failures are reported on their own, not as the change's errors.
	err := nodes[1].applyMetadata(testCtx(t), command{Op: opRegister, ID: "x"})
	if !errors.Is(err, ErrMetadataNotApplied) || errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("metadata on follower: %v, want only ErrMetadataNotApplied", err)
	}
}

func TestBootstrapTwice(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	if err := n.Bootstrap(testCtx(t)); !errors.Is(err, ErrHasState) {
		t.Fatalf("second bootstrap on the running node: %v, want ErrHasState", err)
	}
	n = reopen(t, n)
	if err := n.Bootstrap(testCtx(t)); !errors.Is(err, ErrHasState) {
		t.Fatalf("bootstrap after restart: %v, want ErrHasState", err)
	}
}

func TestRestartKeepsState(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	ctx := testCtx(t)
	for i := range 5 {
		if err := put(n, ctx, fmt.Sprint("k", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	cid, before := n.ClusterID(), mustConfig(t, n)

	n = reopen(t, n)
	if !n.Initialized() {
		t.Fatal("reopened node not initialized")
	}
	eventually(t, "leader after restart", n.IsLeader)
	after := mustConfig(t, n)
	if n.ClusterID() != cid || after.Index != before.Index || len(after.Servers) != 1 || after.Servers[0].APIURL != n.APIURL() {
		t.Fatalf("after restart: cluster %q config %+v; before: %q %+v", n.ClusterID(), after, cid, before)
	}
	if v, _ := get(n, "k4"); v != "4" {
		t.Fatalf("k4=%q after restart, want 4", v)
	}
}

func TestSnapshotRestore(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.SnapshotThreshold, cfg.TrailingLogs = 8, 4
	n := bootstrapNode(t, cfg)
	ctx := testCtx(t)
	for i := range 40 {
		if err := put(n, ctx, fmt.Sprint("k", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if err := put(n, ctx, "after", "snap"); err != nil {
		t.Fatal(err)
	}
	cid, before := n.ClusterID(), mustConfig(t, n)

	n = reopen(t, n)
	if n.ClusterID() != cid || entries(n) < 40 {
		t.Fatalf("right after reopen: cluster %q entries %d, want %q and >=40 from the snapshot", n.ClusterID(), entries(n), cid)
	}
	eventually(t, "leader after restart", n.IsLeader)
	if got := mustConfig(t, n); got.Index != before.Index {
		t.Fatalf("config index %d after restore, want %d", got.Index, before.Index)
	}
	eventually(t, "post-snapshot entry replayed", func() bool { v, _ := get(n, "after"); return v == "snap" })

	// A node added now gets the state through InstallSnapshot.
	n2 := openNode(t, testConfig(t, "n2"))
	joinVoter(t, n, n2)
	eventually(t, "n2 restored from snapshot", func() bool {
		v, _ := get(n2, "k0")
		return v == "0" && n2.ClusterID() == cid && n2.Members()["n2"].APIURL == n2.APIURL()
	})
}

func TestShutdownIdempotent(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if n.State() != raft.Shutdown.String() {
		t.Fatalf("state %s after shutdown", n.State())
	}
}

// A node without application state (the daemon's) replicates what it is
// given, snapshots and restarts with only admitd's state.
func TestNodeWithoutFSM(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.FSM = nil
	n := bootstrapNode(t, cfg)
	for i := range 5 {
		if err := n.Apply(testCtx(t), []byte(fmt.Sprint("opaque ", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	cid := n.ClusterID()
	cfg = n.cfg
	cfg.RaftAddr = n.Addr()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	if n.ClusterID() != cid || n.Members()["n1"].APIURL != cfg.APIURL {
		t.Fatalf("after restart: cluster %q members %v, want %q with n1", n.ClusterID(), n.Members(), cid)
	}
}
