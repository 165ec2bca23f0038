package raftglue

import (
	"testing"
	"time"
)

func fencedConfig(t *testing.T, id string) Config {
	cfg := testConfig(t, id)
	cfg.Fence = true
	return cfg
}

// A node without state refuses raft traffic until it is admitted: the
// leader's log does not reach it, then does once the fence opens.
func TestFenceHoldsUntilOpened(t *testing.T) {
	leader := bootstrapNode(t, fencedConfig(t, "n1"))
	if leader.Fenced() {
		t.Fatal("a bootstrapped node is fenced")
	}
	n2 := openNode(t, fencedConfig(t, "n2"))
	if !n2.Fenced() {
		t.Fatal("a node without state starts unfenced")
	}
	// A non-voter does not hold up the commit of its own addition.
	if _, err := leader.stageNonvoter(testCtx(t), candidateOf(n2), "adm", mustConfig(t, leader).Index); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several heartbeats and append attempts
	if n2.LastIndex() != 0 || n2.Initialized() {
		t.Fatalf("fenced node has last index %d, initialized %v; want nothing", n2.LastIndex(), n2.Initialized())
	}
	if err := n2.OpenFence([]byte(`{"decision_id": "d1"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 catching up once admitted", func() bool {
		return n2.LastIndex() >= leader.LastIndex() && n2.ClusterID() == leader.ClusterID()
	})
}

// A node that restarts with state is a member already: no fence.
func TestFenceOpenWithState(t *testing.T) {
	leader := bootstrapNode(t, fencedConfig(t, "n1"))
	again := reopen(t, leader)
	if again.Fenced() {
		t.Fatal("a node with state is fenced after a restart")
	}
	eventually(t, "it leads again", again.IsLeader)
}

// An admission survives a restart that comes before the log: the fence
// stays open. A node never admitted stays fenced across restarts.
func TestFenceAdmissionSurvivesRestart(t *testing.T) {
	fresh := openNode(t, fencedConfig(t, "n2"))
	fresh = reopen(t, fresh)
	if !fresh.Fenced() {
		t.Fatal("a node never admitted is open after a restart")
	}
	if err := fresh.OpenFence([]byte(`{"decision_id": "d1"}`)); err != nil {
		t.Fatal(err)
	}
	if again := reopen(t, fresh); again.Fenced() {
		t.Fatal("an admitted node is fenced again after a restart")
	}
}
