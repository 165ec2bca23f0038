package admitd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/failpoint"
	"github.com/admitd/admitd/raftglue"
)

// Request is one admission with its options.
type Request struct {
	Candidate Candidate
	// DryRun decides and records, and changes nothing.
	DryRun bool
	// Explain adds the rules that fired or failed in each evaluated stage
	// (costly: only when asked).
	Explain bool
}

// Admit decides on the candidate and, on an allow, adds it: as a non-voter
// that the gate promotes later when staged, else as a voter. Leader only.
// A change that raced in between the facts and the add is collected and
// decided again, a bounded number of times.
func (g *Gate) Admit(ctx context.Context, c Candidate) (*Decision, error) {
	return g.AdmitRequest(ctx, Request{Candidate: c})
}

// AdmitRequest is Admit with options.
func (g *Gate) AdmitRequest(ctx context.Context, req Request) (*Decision, error) {
	if err := g.check(req.Candidate); err != nil {
		return nil, err
	}
	if g.cfg.dryRun {
		req.DryRun = true
	}
	g.admitMu.Lock() // a promotion round may hold it; the budget starts after
	defer g.admitMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Admit)
	defer cancel()
	if d := g.alreadyMember(ctx, req); d != nil {
		return d, nil
	}
	for attempt := 1; attempt <= g.cfg.maxAttempts; attempt++ {
		d, err := g.decide(ctx, req)
		if err != nil || !d.Allowed || req.DryRun {
			return d, err
		}
		err = g.apply(ctx, d)
		if errors.Is(err, raftglue.ErrConfigChanged) {
			d.Reason = "allowed, but the configuration changed before the add; deciding again on fresh facts"
			g.record(d, "admission")
			g.metrics.configChange("configuration_changed")
			g.log.Warn("configuration changed since the facts were read; collecting again",
				"decision_id", d.DecisionID, "candidate", req.Candidate.ID, "attempt", attempt)
			continue
		}
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: gave up after %d attempts", ErrKeptChanging, g.cfg.maxAttempts)
}

// check refuses what no policy needs to see: a closed gate, a follower,
// a candidate without a valid id or raft address.
func (g *Gate) check(c Candidate) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := facts.ValidateID(c.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrBadCandidate, err)
	}
	if err := facts.ValidateHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("%w: raft address: %v", ErrBadCandidate, err)
	}
	if c.APIURL != "" {
		if err := facts.ValidateHTTPURL(c.APIURL); err != nil {
			return fmt.Errorf("%w: API URL: %v", ErrBadCandidate, err)
		}
	}
	if !g.host.IsLeader() {
		return g.notLeader()
	}
	return nil
}

// decide gathers facts and evaluates them once.
func (g *Gate) decide(ctx context.Context, req Request) (*Decision, error) {
	if !g.host.IsLeader() {
		return nil, fmt.Errorf("%w: leadership moved before the facts were read: %w", raftglue.ErrLeadershipLost, g.notLeader())
	}
	if err := g.host.CheckFSM(ctx); err != nil {
		return nil, err
	}
	eng := g.Engine() // one policy set for the whole decision, even across a reload
	doc := facts.Gather(ctx, g.collectConfig(), req.Candidate, g.host)
	doc.Change = facts.ChangeAddVoter
	if g.cfg.staging.Enabled {
		doc.Change = facts.ChangeAddNonvoter
	}
	d, err := g.evaluate(ctx, eng, doc, req.Explain)
	if err != nil {
		return nil, err
	}
	d.Enforced = !req.DryRun
	if !d.Allowed || req.DryRun {
		g.record(d, "admission")
	}
	return d, nil
}

// apply adds the candidate of an allowed decision: as a voter, or, staged,
// as a non-voter under an admission id (the decision's own) that the
// promoter takes from there. On a lost leadership or a timeout the change
// may have committed anyway: the configuration decides.
func (g *Gate) apply(ctx context.Context, d *Decision) error {
	failpoint.Inject("admit/before-add")
	// The facts may be seconds old: fail closed on a candidate that died.
	if gone := facts.RaftAnswers(ctx, g.cfg.collect, d.Candidate.RaftAddr); gone != nil {
		if err := g.redecide(ctx, d, gone); err != nil || !d.Allowed {
			return err
		}
	}
	grant, ok := d.Grant()
	if !ok {
		return errInternalNoGrant
	}
	suffrage, add := facts.Voter, g.host.AddVoter
	if g.cfg.staging.Enabled {
		suffrage, add = facts.Nonvoter, g.host.AddNonvoter
		d.AdmissionID = d.DecisionID
	}
	if g.cfg.beforeAdd != nil {
		if err := g.cfg.beforeAdd(ctx, d); err != nil {
			return g.refused(d, err)
		}
	}
	applyCtx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	index, err := add(applyCtx, grant)
	failpoint.Inject("admit/after-add")
	switch {
	case err == nil, errors.Is(err, raftglue.ErrMetadataNotApplied): // the change stands
		return g.applied(d, suffrage, index)
	case errors.Is(err, raftglue.ErrConfigChanged):
		return err
	case errors.Is(err, raftglue.ErrLeadershipLost), errors.Is(err, raftglue.ErrTimeout):
		return g.settle(ctx, d, err, suffrage)
	}
	g.metrics.configChange("failed")
	return err
}

func (g *Gate) applied(d *Decision, suffrage facts.Suffrage, index uint64) error {
	d.Applied = &admission.Applied{Suffrage: suffrage, Index: index}
	g.metrics.configChange("applied")
	g.record(d, "admission")
	return nil
}

// refused records an allowed decision that the before-add hook stopped.
func (g *Gate) refused(d *Decision, err error) error {
	g.metrics.configChange("candidate_refused")
	d.Reason = fmt.Sprintf("allowed, but not applied: %v", err)
	g.record(d, "admission")
	return err
}

// settle finds out whether an add as want (voter or nonvoter) that lost
// its leader or its deadline committed, so the caller never retries a
// change that already happened.
func (g *Gate) settle(ctx context.Context, d *Decision, cause error, want facts.Suffrage) error {
	c := d.Candidate
	// Only the leader, after a barrier, reads committed membership; a
	// deposed leader's view may hold the add the new leader drops.
	suffrage, present, err := facts.Suffrage(""), false, error(fmt.Errorf("%w: this server no longer leads", raftglue.ErrNotLeader))
	if g.host.IsLeader() {
		suffrage, present, err = g.host.HasMember(ctx, c.ID, c.RaftAddr)
	}
	if err == nil && present && suffrage == want {
		g.log.Warn("add committed despite the error", "decision_id", d.DecisionID, "candidate", c.ID, "error", cause)
		return g.applied(d, want, 0)
	}
	g.metrics.configChange("leadership_lost")
	d.Reason = fmt.Sprintf("allowed, but not applied: %v", cause)
	g.record(d, "admission")
	if err != nil {
		return fmt.Errorf("%w: %v; reading the configuration failed too: %v", ErrOutcomeUnknown, cause, err)
	}
	return fmt.Errorf("%w: %v", raftglue.ErrLeadershipLost, cause)
}

// redecide replaces d, an allow whose candidate stopped answering before
// the add, with a decision on fresh facts. Deciding again rather than
// editing the allow fails closed the usual way: the reachability stage
// denies with its own code and message, the facts show why, and the deny
// is recorded. A candidate that answers again is allowed on fresh facts.
func (g *Gate) redecide(ctx context.Context, d *Decision, gone error) error {
	g.log.Warn("candidate stopped answering before the add; deciding again",
		"decision_id", d.DecisionID, "candidate", d.Candidate.ID, "error", gone)
	explain := slices.ContainsFunc(d.Stages, func(st admission.StageResult) bool { return len(st.Explain) > 0 })
	fresh, err := g.decide(ctx, Request{Candidate: d.Candidate, Explain: explain})
	if err != nil {
		return err
	}
	*d = *fresh
	return nil
}

// alreadyMember answers a candidate that asks again after its admission
// (a lost answer, a retry): it is in the committed configuration with this
// id and address, and its raft server answers as itself in the leader's
// term. A wiped node at a member's address answers term 0 and is decided
// as usual (DUPLICATE_ID).
func (g *Gate) alreadyMember(ctx context.Context, req Request) *Decision {
	c := req.Candidate
	cc, err := g.host.ClusterConfig(ctx)
	if err != nil {
		return nil
	}
	i := slices.IndexFunc(cc.Servers, func(s facts.ConfigServer) bool { return s.ID == c.ID && s.Address == c.RaftAddr })
	if i < 0 {
		return nil
	}
	if !g.answersInTerm(ctx, c, cc.Term) {
		return nil
	}
	s := cc.Servers[i]
	d := &Decision{DecisionID: admission.NewID(), Allowed: true, Enforced: !req.DryRun, Candidate: c,
		Reason:      fmt.Sprintf("%s is already a %s at %s: nothing to do", c.ID, s.Suffrage, s.Address),
		ConfigIndex: cc.Index, AlreadyMember: s.Suffrage, DecidedBy: g.host.ID(), Stages: []admission.StageResult{},
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano)}
	g.record(d, "admission")
	return d
}

// memberGrace bounds how long a member just added may take to hear its
// first heartbeat (until then it answers term 0, as a wiped node would).
const memberGrace = time.Second

// answersInTerm probes c until it answers as itself in term, for at most
// memberGrace: a wiped node behind its fence never does.
func (g *Gate) answersInTerm(ctx context.Context, c Candidate, term uint64) bool {
	cfg := g.collectConfig()
	deadline := time.Now().Add(memberGrace)
	for term > 0 && ctx.Err() == nil {
		a := facts.ProbeRaftRPCFrom(ctx, c.RaftAddr, cfg.ProbeAs)
		switch {
		case a.Answered && a.ID == c.ID && a.Term == term:
			return true
		case !a.Answered || a.ID != c.ID || a.Term != 0 || time.Now().After(deadline):
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
