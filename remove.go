package admitd

import (
	"context"
	"errors"
	"fmt"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
)

// ChangeRequest asks to remove or demote a member.
type ChangeRequest struct {
	ID string
	// Demote makes a voter a non-voter instead of removing it; the member
	// is staged, and the promote phase judges when it votes again.
	Demote bool
	// DryRun decides and records, and changes nothing.
	DryRun  bool
	Explain bool
	// Override lifts the deny codes it names, for this change only, with a
	// reason the decision records. Facts that were not collected and
	// evaluation errors are never lifted. Hosts must guard who may send it.
	Override *admission.Override
}

// Remove decides on removing id and, on an allow, removes it at the
// committed configuration index the facts were read at and tombstones it,
// so it is refused until ClearTombstone. Leader only.
func (g *Gate) Remove(ctx context.Context, id string) (*Decision, error) {
	return g.Change(ctx, ChangeRequest{ID: id})
}

// Demote decides on making the voter id a non-voter and, on an allow,
// does it with prevIndex. Leader only.
func (g *Gate) Demote(ctx context.Context, id string) (*Decision, error) {
	return g.Change(ctx, ChangeRequest{ID: id, Demote: true})
}

// Change is Remove or Demote with options. A change that raced in between
// the facts and the change is collected and decided again.
func (g *Gate) Change(ctx context.Context, req ChangeRequest) (*Decision, error) {
	if err := g.checkChange(req); err != nil {
		return nil, err
	}
	if g.cfg.dryRun {
		req.DryRun = true
	}
	g.admitMu.Lock()
	defer g.admitMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Admit)
	defer cancel()
	for attempt := 1; attempt <= g.cfg.maxAttempts; attempt++ {
		d, was, err := g.decideChange(ctx, req)
		if err != nil || !d.Allowed || req.DryRun {
			if d != nil {
				g.record(d, "removal")
			}
			return d, err
		}
		err = g.applyChange(ctx, d, req, was)
		if errors.Is(err, raftglue.ErrConfigChanged) {
			d.Reason = "allowed, but the configuration changed before the change; deciding again on fresh facts"
			g.record(d, "removal")
			g.metrics.configChange("configuration_changed")
			continue
		}
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: gave up after %d attempts", ErrKeptChanging, g.cfg.maxAttempts)
}

func (g *Gate) checkChange(req ChangeRequest) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := facts.ValidateID(req.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrBadCandidate, err)
	}
	if req.Override != nil {
		if err := req.Override.Validate(); err != nil {
			return err
		}
	}
	if !g.host.IsLeader() {
		return g.notLeader()
	}
	return nil
}

// decideChange gathers the topology and evaluates the remove pipeline; was
// is the member's suffrage in those facts ("" when it is none).
func (g *Gate) decideChange(ctx context.Context, req ChangeRequest) (d *Decision, was facts.Suffrage, err error) {
	if err := g.host.CheckFSM(ctx); err != nil {
		return nil, "", err
	}
	change := facts.ChangeRemove
	if req.Demote {
		change = facts.ChangeDemote
	}
	cand := facts.Candidate{ID: req.ID}
	if m, ok := g.member(ctx, req.ID); ok {
		cand = m
	}
	eng := g.Engine()
	doc := facts.GatherRemove(ctx, g.collectConfig(), cand, change, g.host)
	g.FillSelf(doc.Topology, eng.Revision())
	if site := eng.SiteFacts(); site != nil {
		doc.Site = site // a site stage judges removals too (a maintenance window)
	}
	g.metrics.observeFacts(doc)
	in, err := admission.InputFromDocument(doc)
	if err != nil {
		return nil, "", err
	}
	if req.Override != nil {
		if d, err = eng.EvaluateOverride(ctx, in, *req.Override); err != nil {
			return nil, "", err
		}
		g.log.Warn("membership change under an operator's override", "candidate", req.ID, "change", change,
			"codes", req.Override.Codes, "reason", req.Override.Reason, "allowed", d.Allowed)
	} else {
		d = eng.Evaluate(ctx, in)
	}
	if req.Explain {
		eng.Explain(ctx, in, d)
	}
	d.DecidedBy, d.Enforced = g.host.ID(), !req.DryRun
	return d, suffrageOf(doc.Topology, req.ID), nil
}

// member is id's server in the committed configuration, with its API URL.
func (g *Gate) member(ctx context.Context, id string) (Candidate, bool) {
	cc, err := g.host.ClusterConfig(ctx)
	if err != nil {
		return Candidate{}, false
	}
	for _, s := range cc.Servers {
		if s.ID == id {
			return Candidate{ID: s.ID, RaftAddr: s.Address, APIURL: s.APIURL}, true
		}
	}
	return Candidate{}, false
}

// applyChange makes an allowed removal or demotion with the facts' index.
func (g *Gate) applyChange(ctx context.Context, d *Decision, req ChangeRequest, was facts.Suffrage) error {
	grant, ok := d.Grant()
	if !ok {
		return errInternalNoGrant
	}
	applyCtx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	change, want := g.host.RemoveServer, facts.Suffrage("")
	if req.Demote {
		change, want = g.host.DemoteVoter, facts.Nonvoter
	}
	index, err := change(applyCtx, grant)
	switch {
	case err == nil, errors.Is(err, raftglue.ErrMetadataNotApplied):
		return g.changed(d, req, was, index, err == nil)
	case errors.Is(err, raftglue.ErrConfigChanged):
		return err
	case errors.Is(err, raftglue.ErrLeadershipLost), errors.Is(err, raftglue.ErrTimeout):
		return g.settleChange(ctx, d, req, was, err, want)
	}
	g.metrics.configChange("failed")
	return err
}

// changed records an applied removal (tombstoned unless its metadata
// commit failed) or demotion.
func (g *Gate) changed(d *Decision, req ChangeRequest, was facts.Suffrage, index uint64, recorded bool) error {
	if req.Demote {
		d.Applied = &admission.Applied{Suffrage: facts.Nonvoter, Index: index}
		g.metrics.configChange("demoted")
	} else {
		d.Removed = &admission.Applied{Suffrage: was, Index: index}
		d.Tombstoned = recorded
		g.metrics.configChange("removed")
		if !recorded {
			g.log.Warn("member removed, but its tombstone was not recorded", "id", req.ID)
		}
	}
	g.record(d, "removal")
	return nil
}

// settleChange reads the committed configuration after a change whose
// outcome leadership loss or a deadline left unknown: want is the
// suffrage the member should now have ("" for absent).
func (g *Gate) settleChange(ctx context.Context, d *Decision, req ChangeRequest, was facts.Suffrage, cause error, want facts.Suffrage) error {
	suffrage, present, err := facts.Suffrage(""), false, error(fmt.Errorf("%w: this server no longer leads", raftglue.ErrNotLeader))
	if g.host.IsLeader() {
		suffrage, present, err = g.host.HasMember(ctx, req.ID, "")
	}
	if err == nil && ((want == "" && !present) || (present && suffrage == want)) {
		return g.changed(d, req, was, 0, false)
	}
	d.Reason = fmt.Sprintf("allowed, but not applied: %v", cause)
	g.record(d, "removal")
	if err != nil {
		return fmt.Errorf("%w: %v; reading the configuration failed too: %v", ErrOutcomeUnknown, cause, err)
	}
	return fmt.Errorf("%w: %v", raftglue.ErrLeadershipLost, cause)
}

// suffrageOf is id's suffrage in a topology, "" when it is no member.
func suffrageOf(t *facts.Topology, id string) facts.Suffrage {
	if t == nil {
		return ""
	}
	for _, s := range t.Servers {
		if s.ID == id {
			return s.Suffrage
		}
	}
	return ""
}

// ErrDryRun: the gate runs in dry-run mode and never changes membership.
var ErrDryRun = errors.New("admitd: dry-run mode never changes membership")

// ClearTombstone lets a removed id be admitted again. Leader only; a
// dry-run gate changes nothing and answers ErrDryRun.
func (g *Gate) ClearTombstone(ctx context.Context, id string) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if g.cfg.dryRun {
		return ErrDryRun
	}
	if !g.host.IsLeader() {
		return g.notLeader()
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	return g.host.ClearTombstone(ctx, id)
}
