package raftglue

import (
	"errors"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/facts"
)

func candidateOf(n *Node) facts.Candidate {
	return facts.Candidate{ID: n.ID(), RaftAddr: n.Addr(), APIURL: n.APIURL()}
}

// stage adds n as a staged non-voter at the current configuration index
// and returns the node that leads once it is in. If leadership moves, the
// stage is asked again of the next leader (onLeader): the lost add may have
// committed, so a second attempt first reads the committed configuration on
// that leader, stops if n is a non-voter there staged under admissionID,
// and else stages it at that configuration's index, which raft refuses if
// it went stale.
func stage(t *testing.T, leader, n *Node, admissionID string) *Node {
	t.Helper()
	attempt := 0
	return onLeader(t, leader, "stage "+n.ID(), func(leader *Node) error {
		ctx := testCtx(t)
		cc, err := leader.ClusterConfig(ctx)
		if err != nil {
			return err
		}
		if attempt++; attempt > 1 && leader.Staged()[n.ID()].AdmissionID == admissionID &&
			slices.ContainsFunc(cc.Servers, func(s facts.ConfigServer) bool {
				return s.ID == n.ID() && s.Address == n.Addr() && s.Suffrage == facts.Nonvoter
			}) {
			return nil
		}
		_, err = leader.stageNonvoter(ctx, candidateOf(n), admissionID, cc.Index)
		return err
	})
}

func suffrageOf(t *testing.T, leader *Node, id string) facts.Suffrage {
	t.Helper()
	s, ok, err := leader.HasMember(testCtx(t), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return s
}

// A staged non-voter is recorded with its admission id, replicated, kept
// in snapshots, and its stage ends when it is promoted.
func TestStagedThenPromoted(t *testing.T) {
	nodes := startCluster(t, 2)
	leader := nodes[0]
	n3 := openNode(t, testConfig(t, "n3"))
	stage(t, leader, n3, "adm-1")

	if got := suffrageOf(t, leader, "n3"); got != facts.Nonvoter {
		t.Fatalf("n3 is %q, want nonvoter", got)
	}
	st, ok := leader.Staged()["n3"]
	if !ok || st.AdmissionID != "adm-1" || st.RaftAddr != n3.Addr() || st.StagedAtMS == 0 {
		t.Fatalf("stage record %+v (present %v)", st, ok)
	}
	cc := mustConfig(t, leader)
	if len(cc.Staged) != 1 || cc.Staged[0] != "n3" || cc.LastIndex == 0 {
		t.Fatalf("cluster config staged %v, last index %d", cc.Staged, cc.LastIndex)
	}
	eventually(t, "n2 replicates the stage", func() bool { _, ok := nodes[1].Staged()["n3"]; return ok })
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	restarted := reopen(t, nodes[1])
	eventually(t, "the stage survives a restart", func() bool { _, ok := restarted.Staged()["n3"]; return ok })

	if _, err := leader.addVoter(testCtx(t), "n3", n3.Addr(), n3.APIURL(), mustConfig(t, leader).Index); err != nil {
		t.Fatal(err)
	}
	if got := suffrageOf(t, leader, "n3"); got != facts.Voter {
		t.Fatalf("n3 is %q after promotion, want voter", got)
	}
	if len(leader.Staged()) != 0 {
		t.Fatalf("stage not ended by the promotion: %v", leader.Staged())
	}
}

// RemoveStaged removes an unpromoted non-voter without a tombstone, and
// refuses an id that is not staged.
func TestRemoveStaged(t *testing.T) {
	nodes := startCluster(t, 2)
	leader := nodes[0]
	n3 := openNode(t, testConfig(t, "n3"))
	stage(t, leader, n3, "adm-2")
	ctx := testCtx(t)
	if _, err := leader.RemoveStaged(ctx, "n2", mustConfig(t, leader).Index); err == nil {
		t.Fatal("RemoveStaged removed a voter that was never staged")
	}
	if _, err := leader.RemoveStaged(ctx, "n3", 0); !errors.Is(err, ErrNoPrevIndex) {
		t.Fatalf("remove at 0: %v, want ErrNoPrevIndex", err)
	}
	stale := mustConfig(t, leader).Index - 1
	if _, err := leader.RemoveStaged(ctx, "n3", stale); !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("remove at a stale index: %v, want ErrConfigChanged", err)
	}
	if _, err := leader.RemoveStaged(ctx, "n3", mustConfig(t, leader).Index); err != nil {
		t.Fatal(err)
	}
	if got := suffrageOf(t, leader, "n3"); got != "" {
		t.Fatalf("n3 still a %s", got)
	}
	if len(leader.Staged()) != 0 || len(leader.Tombstones()) != 0 {
		t.Fatalf("staged %v, tombstones %v: want none", leader.Staged(), leader.Tombstones())
	}
	if _, ok := leader.Members()["n3"]; ok {
		t.Fatal("removed non-voter keeps its metadata")
	}
}

// ReconcileStaged ends stages the configuration has moved past: a voter
// whose promotion lost its metadata commit, and a member removed by hand.
func TestReconcileStaged(t *testing.T) {
	nodes := startCluster(t, 1)
	leader := nodes[0]
	n2, n3 := openNode(t, testConfig(t, "n2")), openNode(t, testConfig(t, "n3"))
	stage(t, leader, n2, "adm-2")
	stage(t, leader, n3, "adm-3")
	ctx := testCtx(t)
	// Raft changes alone, as if the metadata commit after them was lost.
	// With n2 a voter, the leader needs n2 to keep leading: on a leader
	// change both are asked again of the next leader (n1 or n2), whose
	// replicated stages are the same. Asking again is safe: without a
	// prevIndex (0) neither can go stale, and adding a voter already at
	// that address, or removing a server already gone, leaves the
	// configuration as it was.
	leader = onLeader(t, leader, "raft AddVoter n2", func(leader *Node) error {
		return leader.raft.AddVoter("n2", raft.ServerAddress(n2.Addr()), 0, 0).Error()
	})
	leader = onLeader(t, leader, "raft RemoveServer n3", func(leader *Node) error {
		return leader.raft.RemoveServer("n3", 0, 0).Error()
	})
	if len(leader.Staged()) != 2 {
		t.Fatalf("staged %v before reconciling, want both", leader.Staged())
	}
	// Ending a stage twice ends it once, so asking again is safe too.
	leader = onLeader(t, leader, "ReconcileStaged", func(leader *Node) error { return leader.ReconcileStaged(ctx) })
	if len(leader.Staged()) != 0 {
		t.Fatalf("staged %v after reconciling, want none", leader.Staged())
	}
	if _, ok := leader.Members()["n2"]; !ok {
		t.Fatal("the promoted voter lost its metadata")
	}
	if _, ok := leader.Members()["n3"]; ok {
		t.Fatal("the removed member keeps its metadata")
	}
}

// A staged add that loses the race on prevIndex leaves no stage behind,
// so it holds no slot; one that commits had its stage recorded first.
func TestStagedAddRaceLeavesNoStage(t *testing.T) {
	nodes := startCluster(t, 2)
	leader := nodes[0]
	n2 := openNode(t, testConfig(t, "n3"))
	stale := mustConfig(t, leader).Index - 1
	if _, err := leader.stageNonvoter(testCtx(t), candidateOf(n2), "adm-x", stale); !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("stage at a stale index: %v, want ErrConfigChanged", err)
	}
	if len(leader.Staged()) != 0 {
		t.Fatalf("a stage survived a failed add: %v", leader.Staged())
	}
	if _, ok := leader.Members()["n3"]; ok {
		t.Fatal("metadata survived a failed add")
	}
	stage(t, leader, n2, "adm-y")
	if m := leader.Members()["n3"]; m.APIURL != n2.APIURL() {
		t.Fatalf("API URL %q, want %q", m.APIURL, n2.APIURL())
	}
}
