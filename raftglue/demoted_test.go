package raftglue

import (
	"errors"
	"testing"
)

// A demoted voter's stage is never ended by RemoveStaged: the member has a
// vote history, and only a granted removal takes it out of the cluster.
func TestRemoveStagedRefusesADemotedVoter(t *testing.T) {
	leader := startCluster(t, 1)[0]
	n2 := openNode(t, testConfig(t, "n2"))
	stage(t, leader, n2, "adm-2")
	st := leader.Staged()["n2"]
	st.Demoted = true
	if _, err := leader.apply(testCtx(t), command{Op: opRegister, ID: "n2", APIURL: n2.APIURL(), Stage: &st}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.RemoveStaged(testCtx(t), "n2", mustConfig(t, leader).Index); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("RemoveStaged of a demoted voter: %v, want ErrNotGranted", err)
	}
	if s := suffrageOf(t, leader, "n2"); s != "nonvoter" {
		t.Fatalf("n2 is %q after the refused removal, want still a nonvoter", s)
	}
	// An admitted non-voter's stage still ends that way.
	n3 := openNode(t, testConfig(t, "n3"))
	stage(t, leader, n3, "adm-3")
	if _, err := leader.RemoveStaged(testCtx(t), "n3", mustConfig(t, leader).Index); err != nil {
		t.Fatalf("RemoveStaged of an admitted non-voter: %v", err)
	}
}
