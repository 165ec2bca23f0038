package admitd

import (
	"errors"
	"testing"
)

// A dry-run gate changes nothing, tombstones included.
func TestDryRunGateKeepsTombstones(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	g, _ := newFakeGate(t, f, fsm, WithDryRun(true))
	if err := g.ClearTombstone(gateTestContext(t), "n9"); !errors.Is(err, ErrDryRun) {
		t.Fatalf("clear-tombstone on a dry-run gate: %v, want ErrDryRun", err)
	}
}
