package admitd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
)

// Remove takes id out of the configuration at the committed index and
// tombstones it, so it is refused until ClearTombstone. Leader only; the
// leader cannot remove itself. Removals are not yet judged by the policy
// stages: the decision records the change, with no stages.
func (g *Gate) Remove(ctx context.Context, id string) (*Decision, error) {
	rm, err := g.RemoveMember(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Decision{
		DecisionID: admission.NewID(), Allowed: true, Enforced: true,
		Reason:    fmt.Sprintf("removed %s and tombstoned it: %v", id, rm.Tombstoned),
		Candidate: facts.Candidate{ID: id}, ConfigIndex: rm.ConfigIndex, DecidedBy: rm.DecidedBy,
		Removed: &admission.Applied{Suffrage: rm.Suffrage, Index: rm.Index},
		Stages:  []admission.StageResult{}, Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
	}
	g.record(d, "removal")
	return d, nil
}

// Removal is what RemoveMember did.
type Removal struct {
	admission.Removal
	Suffrage string // the member's suffrage before the removal
}

// RemoveMember is Remove's change, reported as the HTTP API does.
func (g *Gate) RemoveMember(ctx context.Context, id string) (*Removal, error) {
	if g.closed.Load() {
		return nil, ErrClosed
	}
	if err := facts.ValidateID(id); err != nil {
		return nil, fmt.Errorf("%w: id: %v", ErrBadCandidate, err)
	}
	if !g.host.IsLeader() {
		return nil, g.notLeader()
	}
	if g.cfg.dryRun {
		return nil, ErrDryRun
	}
	if id == g.host.ID() {
		return nil, ErrCannotRemoveLeader
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	g.admitMu.Lock()
	defer g.admitMu.Unlock()
	cc, err := g.host.ClusterConfig(ctx)
	if err != nil {
		return nil, err
	}
	suffrage, ok := suffrageOf(cc, id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	index, err := g.host.RemoveServer(ctx, id, cc.Index)
	tombstoned := err == nil
	if errors.Is(err, raftglue.ErrMetadataNotApplied) {
		// The removal stands; say the tombstone is missing rather than
		// answer an error a retry could never fix (it would find no member).
		g.log.Warn("member removed, but its tombstone was not recorded", "id", id, "error", err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	g.metrics.configChange("removed")
	g.log.Info("member removed", "id", id, "index", index, "tombstoned", tombstoned)
	return &Removal{Removal: admission.Removal{ID: id, Removed: true, Index: index, ConfigIndex: cc.Index,
		Tombstoned: tombstoned, DecidedBy: g.host.ID()}, Suffrage: suffrage}, nil
}

// ErrDryRun: the gate runs in dry-run mode and never changes membership.
var ErrDryRun = errors.New("admitd: dry-run mode never changes membership")

func suffrageOf(cc facts.ClusterConfig, id string) (string, bool) {
	for _, s := range cc.Servers {
		if s.ID == id {
			return s.Suffrage, true
		}
	}
	return "", false
}

// ClearTombstone lets a removed id be admitted again. Leader only.
func (g *Gate) ClearTombstone(ctx context.Context, id string) error {
	if !g.host.IsLeader() {
		return g.notLeader()
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	return g.host.ClearTombstone(ctx, id)
}
