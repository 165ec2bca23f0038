package raftglue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/failpoint"
)

// AddVoter makes the granted candidate a voter, applied only if the raft
// configuration is still the one at g.ConfigIndex(). It returns the index of
// the configuration entry.
//
// Errors: ErrNotGranted (raft untouched), ErrNoPrevIndex, ErrConfigChanged
// (nothing changed), ErrLeadershipLost or ErrTimeout (the change may have
// committed: ask HasMember before retrying). A non-zero index with an error
// wrapping ErrMetadataNotApplied means a staged member was promoted but the
// end of its stage was not recorded (ReconcileStaged records it).
func (h *Host) AddVoter(ctx context.Context, g admission.Grant) (uint64, error) {
	if !g.Valid() {
		return 0, ErrNotGranted
	}
	c := g.Candidate()
	// A staged member becomes a voter only through the promote phase, so
	// an admit grant cannot skip its catch-up.
	if _, staged := h.fsm.staged()[c.ID]; staged != (g.Phase() == facts.PhasePromote) {
		return 0, fmt.Errorf("%w: a %s grant for %s, which is staged: %v", ErrNotGranted, g.Phase(), c.ID, staged)
	}
	return h.addVoter(ctx, c.ID, c.RaftAddr, c.APIURL, g.ConfigIndex())
}

// AddNonvoter is AddVoter for a non-voting member: a staged join. The
// member is recorded as staged, under the grant's decision id as its
// admission id, until a promote grant's AddVoter or RemoveStaged ends it.
func (h *Host) AddNonvoter(ctx context.Context, g admission.Grant) (uint64, error) {
	if !g.Valid() {
		return 0, ErrNotGranted
	}
	if g.Phase() != facts.PhaseAdmit {
		return 0, fmt.Errorf("%w: a %s grant cannot add a member", ErrNotGranted, g.Phase())
	}
	return h.stageNonvoter(ctx, g.Candidate(), g.DecisionID(), g.ConfigIndex())
}

// stageNonvoter is the ungated staged add; only AddNonvoter and tests reach it.
func (h *Host) stageNonvoter(ctx context.Context, c facts.Candidate, admissionID string, prevIndex uint64) (uint64, error) {
	stage := &Stage{AdmissionID: admissionID, RaftAddr: c.RaftAddr, APIURL: c.APIURL, StagedAtMS: time.Now().UnixMilli()}
	return h.addServer(ctx, command{Op: opRegister, ID: c.ID, APIURL: c.APIURL, Stage: stage}, c.RaftAddr, prevIndex, h.raft.AddNonvoter)
}

// addVoter is the ungated raft call; only AddVoter and tests reach it.
func (h *Host) addVoter(ctx context.Context, id, addr, apiURL string, prevIndex uint64) (uint64, error) {
	return h.addServer(ctx, command{Op: opRegister, ID: id, APIURL: apiURL}, addr, prevIndex, h.raft.AddVoter)
}

type addFunc func(raft.ServerID, raft.ServerAddress, uint64, time.Duration) raft.IndexFuture

// addServer records reg (the member's API URL, and its stage for a staged
// add), then makes the raft change, then ends the stage of a promoted
// member. Recording first means a leader that dies right after the change
// leaves neither a member nobody can reach nor a stage nobody watches;
// metadata alone never changes membership, and a stage whose change did
// not commit is dropped (here, or by ReconcileStaged).
func (h *Host) addServer(ctx context.Context, reg command, addr string, prevIndex uint64, add addFunc) (uint64, error) {
	id := reg.ID
	if id == "" || addr == "" {
		return 0, errors.New("raftglue: server id and address are required")
	}
	if prevIndex == 0 {
		return 0, ErrNoPrevIndex
	}
	if err := h.recordBefore(ctx, reg); err != nil {
		return 0, err
	}
	index, _, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return add(raft.ServerID(id), raft.ServerAddress(addr), prevIndex, timeout)
	})
	if err != nil {
		if reg.Stage != nil && errors.Is(err, ErrConfigChanged) {
			// Certainly not added: its stage must not hold a slot.
			_ = h.applyMetadata(ctx, command{Op: opUnstage, ID: id})
		}
		return 0, err
	}
	failpoint.Inject("raftglue/before-metadata")
	if _, staged := h.fsm.staged()[id]; reg.Stage == nil && staged {
		// A promotion: the register ends the stage. The members map is
		// keyed by id, so a retry cannot duplicate anything.
		return index, h.applyMetadata(ctx, reg)
	}
	return index, nil
}

// recordBefore records a member's metadata ahead of its raft change: the
// stage for a staged add, else the API URL unless it is already known.
func (h *Host) recordBefore(ctx context.Context, reg command) error {
	if reg.Stage == nil {
		m, ok := h.fsm.members()[reg.ID]
		if (ok && m.APIURL == reg.APIURL) || (!ok && reg.APIURL == "") {
			return nil // nothing to record: a member without an API needs no URL
		}
		reg = command{Op: opSetURL, ID: reg.ID, APIURL: reg.APIURL}
	}
	_, err := h.apply(ctx, reg)
	return err
}

// applyMetadata records metadata after a committed membership change. It
// outlives the caller's ctx (bounded by ApplyTimeout) because the change
// already stands, and its error wraps only ErrMetadataNotApplied so callers
// never mistake it for the change's own ErrTimeout or ErrLeadershipLost.
func (h *Host) applyMetadata(ctx context.Context, c command) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.applyTimeout)
	defer cancel()
	if _, err := h.apply(ctx, c); err != nil {
		return fmt.Errorf("%w: %v", ErrMetadataNotApplied, err)
	}
	return nil
}

// RemoveServer removes the member a remove grant names, applied only if
// the configuration is still the one at g.ConfigIndex(), then records a
// tombstone for it. Error semantics are AddVoter's.
func (h *Host) RemoveServer(ctx context.Context, g admission.Grant) (uint64, error) {
	if err := checkRemoveGrant(g, facts.ChangeRemove); err != nil {
		return 0, err
	}
	return h.removeServer(ctx, g.Candidate().ID, g.ConfigIndex(), opTombstone)
}

// DemoteVoter makes the voter a demote grant names a non-voter, applied
// only if the configuration is still the one at g.ConfigIndex(). The
// member is staged under the grant's decision id first, so the promote
// phase judges when it may vote again (or removes it at the deadline).
// Error semantics are AddVoter's.
func (h *Host) DemoteVoter(ctx context.Context, g admission.Grant) (uint64, error) {
	if err := checkRemoveGrant(g, facts.ChangeDemote); err != nil {
		return 0, err
	}
	c := g.Candidate()
	if g.ConfigIndex() == 0 {
		return 0, ErrNoPrevIndex
	}
	apiURL := h.fsm.members()[c.ID].APIURL
	stage := &Stage{AdmissionID: g.DecisionID(), RaftAddr: c.RaftAddr, APIURL: apiURL, StagedAtMS: time.Now().UnixMilli(), Demoted: true}
	if _, err := h.apply(ctx, command{Op: opRegister, ID: c.ID, APIURL: apiURL, Stage: stage}); err != nil {
		return 0, err
	}
	index, _, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return h.raft.DemoteVoter(raft.ServerID(c.ID), g.ConfigIndex(), timeout)
	})
	if errors.Is(err, ErrConfigChanged) {
		// Certainly still a voter: its stage must not stand.
		_ = h.applyMetadata(ctx, command{Op: opRegister, ID: c.ID, APIURL: apiURL})
	}
	return index, err
}

func checkRemoveGrant(g admission.Grant, change string) error {
	switch {
	case !g.Valid():
		return ErrNotGranted
	case g.Phase() != facts.PhaseRemove || g.Change() != change:
		return fmt.Errorf("%w: a %s/%s grant cannot %s a member", ErrNotGranted, g.Phase(), g.Change(), change)
	case g.Candidate().ID == "":
		return errors.New("raftglue: server id is required")
	}
	return nil
}

// RemoveStaged removes a staged non-voter that was not promoted, if the
// configuration is still the one at prevIndex. It leaves no tombstone: the
// node never voted, and its raft state already marks it as initialized.
// A demoted voter did vote: only a granted removal takes it out.
// Error semantics are AddVoter's.
func (h *Host) RemoveStaged(ctx context.Context, id string, prevIndex uint64) (uint64, error) {
	st, ok := h.fsm.staged()[id]
	switch {
	case !ok:
		return 0, fmt.Errorf("raftglue: %s is not a staged member", id)
	case st.Demoted:
		return 0, fmt.Errorf("%w: %s is a demoted voter; removing it takes a removal decision", ErrNotGranted, id)
	}
	return h.removeServer(ctx, id, prevIndex, opUnstage)
}

// removeServer makes the raft change, then records op for id.
func (h *Host) removeServer(ctx context.Context, id string, prevIndex uint64, op string) (uint64, error) {
	if prevIndex == 0 {
		return 0, ErrNoPrevIndex
	}
	index, _, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return h.raft.RemoveServer(raft.ServerID(id), prevIndex, timeout)
	})
	if err != nil {
		return 0, err
	}
	return index, h.applyMetadata(ctx, command{Op: op, ID: id})
}

// Staged lists the staged non-voters by id.
func (h *Host) Staged() map[string]Stage { return h.fsm.staged() }

// ClearTombstone forgets that id was removed. Leader only.
func (h *Host) ClearTombstone(ctx context.Context, id string) error {
	_, err := h.apply(ctx, command{Op: opClearTombstone, ID: id})
	return err
}

// HasMember reports whether id (at addr, unless addr is "") is in the
// configuration, and with which suffrage. Use it after ErrLeadershipLost or
// ErrTimeout to learn whether the change committed. On the leader it first
// waits for a barrier so the answer is committed state; elsewhere it is the
// local, possibly not yet committed, view.
func (h *Host) HasMember(ctx context.Context, id, addr string) (suffrage facts.Suffrage, present bool, err error) {
	if h.IsLeader() {
		if err := h.barrier(ctx); err != nil {
			return "", false, err
		}
	}
	f := h.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", false, mapError(err)
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id && (addr == "" || string(s.Address) == addr) {
			return suffrageName(s.Suffrage), true, nil
		}
	}
	return "", false, nil
}

// suffrageName maps raft suffrage to the facts vocabulary; Staging (unused
// by raft today) does not vote, so it is a nonvoter.
func suffrageName(s raft.ServerSuffrage) facts.Suffrage {
	if s == raft.Voter {
		return facts.Voter
	}
	return facts.Nonvoter
}

// mapError turns raft errors into this package's sentinels, keeping the
// original wrapped. Errors already mapped pass through.
func mapError(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrTimeout), errors.Is(err, ErrLeadershipLost):
		return err
	case isConfigChanged(err):
		return fmt.Errorf("%w: %w", ErrConfigChanged, err)
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w: %w", ErrLeadershipLost, ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// isConfigChanged matches raft's unexported-type error
// "configuration changed since %v (latest is %v)" by its text.
func isConfigChanged(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "configuration changed since")
}

// ReconcileStaged ends the stage of every staged id the configuration has
// moved past: promoted to voter (its promotion's metadata commit was lost)
// or no longer a member. Leader only.
func (h *Host) ReconcileStaged(ctx context.Context) error {
	staged := h.fsm.staged()
	if len(staged) == 0 {
		return nil
	}
	_, servers, err := h.committedConfig(ctx)
	if err != nil {
		return err
	}
	for id, st := range staged {
		i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
		switch {
		case i < 0:
			_, err = h.apply(ctx, command{Op: opUnstage, ID: id})
		case servers[i].Suffrage == raft.Voter:
			_, err = h.apply(ctx, command{Op: opRegister, ID: id, APIURL: st.APIURL})
		}
		if err != nil {
			return err
		}
	}
	return nil
}
