package admitd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
)

// promoter is the leader's memory of the staged non-voters: for how long
// each has been healthy, its progress, and its last recorded deny. A new
// leader starts afresh, so a healthy streak never spans a leader change.
type promoter struct {
	mu       sync.Mutex
	since    map[string]time.Time
	progress map[string]admission.StageProgress
	lastDeny map[string]string
}

func newPromoter() *promoter {
	return &promoter{since: map[string]time.Time{}, progress: map[string]admission.StageProgress{}, lastDeny: map[string]string{}}
}

// observer is facts.Staging.Observe for one candidate.
func (p *promoter) observer(id string) func(bool) time.Duration {
	return func(healthy bool) time.Duration {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := time.Now()
		since, ok := p.since[id]
		switch {
		case !healthy:
			delete(p.since, id)
			return 0
		case !ok:
			p.since[id] = now
			return 0
		}
		return now.Sub(since)
	}
}

// keep forgets every id that is no longer staged (nil: forget all).
func (p *promoter) keep(staged map[string]raftglue.Stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	maps.DeleteFunc(p.since, func(id string, _ time.Time) bool { _, ok := staged[id]; return !ok })
	maps.DeleteFunc(p.progress, func(id string, _ admission.StageProgress) bool { _, ok := staged[id]; return !ok })
	maps.DeleteFunc(p.lastDeny, func(id string, _ string) bool { _, ok := staged[id]; return !ok })
}

func (p *promoter) update(sp admission.StageProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.progress[sp.ID] = sp
}

// changed says whether a deny differs from the last one recorded for id,
// so a non-voter that stays behind does not flood the decision log.
func (p *promoter) changed(id, signature string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastDeny[id] == signature {
		return false
	}
	p.lastDeny[id] = signature
	return true
}

func (p *promoter) list() []admission.StageProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Collect(maps.Values(p.progress))
	slices.SortFunc(out, func(a, b admission.StageProgress) int { return a.StagedAt.Compare(b.StagedAt) })
	return out
}

func (p *promoter) byAdmission(id string) (admission.StageProgress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sp := range p.progress {
		if sp.AdmissionID == id {
			return sp, true
		}
	}
	return admission.StageProgress{}, false
}

func (g *Gate) promoteRound(ctx context.Context) {
	if !g.host.IsLeader() || g.cfg.dryRun {
		g.prom.keep(nil)
		return
	}
	// Under the admission lock: a stage is recorded just before its raft
	// change, which an admission in flight may not have made yet.
	g.admitMu.Lock()
	err := g.host.ReconcileStaged(ctx)
	staged := g.host.Staged()
	g.admitMu.Unlock()
	if err != nil {
		g.log.Warn("reading the staged members failed", "error", err)
		return
	}
	g.prom.keep(staged)
	for _, id := range slices.Sorted(maps.Keys(staged)) {
		if ctx.Err() != nil || !g.host.IsLeader() {
			return
		}
		g.promoteOne(ctx, id, staged[id])
	}
}

// promoteOne decides on one staged non-voter under the admission lock, so
// promotions and admissions change the configuration one at a time.
func (g *Gate) promoteOne(ctx context.Context, id string, st raftglue.Stage) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Admit)
	defer cancel()
	g.admitMu.Lock()
	defer g.admitMu.Unlock()
	cand := facts.Candidate{ID: id, RaftAddr: st.RaftAddr, APIURL: st.APIURL}
	stagedAt := time.UnixMilli(st.StagedAtMS)
	eng := g.Engine()
	doc := facts.GatherPromote(ctx, g.collectConfig(), cand, g.host, g.host,
		facts.Staging{StagedAt: stagedAt, Observe: g.prom.observer(id)})
	doc.Change = facts.ChangePromote
	d, err := g.evaluate(ctx, eng, doc, false)
	if err != nil {
		g.log.Error("promote facts could not be evaluated", "candidate", id, "error", err)
		return
	}
	d.AdmissionID = st.AdmissionID
	deadline := stagedAt.Add(g.cfg.staging.Deadline)
	g.prom.update(admission.StageProgress{ID: id, AdmissionID: st.AdmissionID, Candidate: cand, StagedAt: stagedAt,
		Deadline: deadline, CheckedAt: time.Now(), CatchUp: doc.CatchUp, DecisionID: d.DecisionID, Reason: d.Reason})
	switch {
	case d.Allowed:
		g.promote(ctx, d)
	case time.Now().After(deadline) && !g.cfg.staging.Keep && !st.Demoted:
		g.expire(ctx, d)
	default:
		if time.Now().After(deadline) {
			// A demoted voter stays: its removal is a removal decision's.
			d.Reason = fmt.Sprintf("not promoted within %s, left in place: %s", g.cfg.staging.Deadline, d.Reason)
		}
		if g.prom.changed(id, denySignature(d)) {
			g.record(d, "promotion")
		}
	}
}

// promote makes an allowed non-voter a voter with the facts' configuration
// index; a failure is recorded and the next round tries on fresh facts.
func (g *Gate) promote(ctx context.Context, d *Decision) {
	grant, ok := d.Grant()
	if !ok {
		g.log.Error("internal: an allowed promotion without a grant", "candidate", d.Candidate.ID)
		return
	}
	applyCtx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	index, err := g.host.AddVoter(applyCtx, grant)
	if err != nil && !errors.Is(err, raftglue.ErrMetadataNotApplied) {
		g.metrics.configChange("promotion_failed")
		d.Reason = fmt.Sprintf("allowed, but not promoted (the next round tries again): %v", err)
		g.log.Warn("promotion failed", "candidate", d.Candidate.ID, "error", err)
		if g.prom.changed(d.Candidate.ID, "promotion failed") {
			g.record(d, "promotion")
		}
		return
	}
	d.Applied = &admission.Applied{Suffrage: facts.Voter, Index: index}
	g.metrics.configChange("promoted")
	g.record(d, "promotion")
}

// expire removes a non-voter that was not allowed before its deadline.
// The removal rests on no policy fact, so it uses the current index.
func (g *Gate) expire(ctx context.Context, d *Decision) {
	d.Reason = fmt.Sprintf("not promoted within %s: %s", g.cfg.staging.Deadline, d.Reason)
	applyCtx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	cc, err := g.host.ClusterConfig(applyCtx)
	var index uint64
	if err == nil {
		index, err = g.host.RemoveStaged(applyCtx, d.Candidate.ID, cc.Index)
	}
	if err != nil && !errors.Is(err, raftglue.ErrMetadataNotApplied) {
		d.Reason += fmt.Sprintf("; removing it failed (the next round tries again): %v", err)
		g.log.Warn("removing a staged non-voter failed", "candidate", d.Candidate.ID, "error", err)
		if g.prom.changed(d.Candidate.ID, "removal failed") {
			g.record(d, "promotion")
		}
		return
	}
	d.Reason += "; removed"
	d.Removed = &admission.Applied{Suffrage: facts.Nonvoter, Index: index}
	g.metrics.configChange("removed")
	g.log.Warn("staged non-voter removed", "candidate", d.Candidate.ID, "admission_id", d.AdmissionID, "reason", d.Reason)
	g.record(d, "promotion")
}

// denySignature is what a repeated deny is compared on: the stage and its
// codes, not the message, whose figures change every round.
func denySignature(d *Decision) string {
	sig := d.StoppedAt
	if st := d.StoppedStage(); st != nil {
		for _, v := range st.Deny {
			sig += " " + v.Code
		}
	}
	if strings.HasPrefix(d.Reason, "not promoted within") {
		sig += " past-deadline"
	}
	return sig
}
