package facts

import (
	"context"
	"fmt"
	"time"
)

// LeaderLog is what the catch_up collector needs from the leader.
type LeaderLog interface {
	ClusterID() string
	LastIndex() uint64
	Term() uint64
}

// Staging is what the leader knows about a staged candidate.
type Staging struct {
	StagedAt time.Time
	// Observe records whether the candidate is healthy right now and
	// returns for how long it has been healthy without a break.
	Observe func(healthy bool) time.Duration
}

// GatherPromote collects the promote phase's facts for a staged non-voter:
// reachability, catch_up and topology, concurrently, each under its own
// deadline, as Gather does for the admit phase.
func GatherPromote(ctx context.Context, cfg CollectConfig, cand Candidate, view ClusterView, log LeaderLog, st Staging) *Document {
	cfg = cfg.withDefaults()
	doc := &Document{Schema: Schema, Phase: PhasePromote, CollectedAt: time.Now().UTC(), Candidate: cand}
	gather(ctx, cfg, doc, view, func(ctx context.Context, state *stateFetch) {
		doc.CatchUp = runSection(ctx, cfg.InitState, func(ctx context.Context) (*CatchUp, error) {
			return collectCatchUp(ctx, cand, state, log, st)
		})
	})
	return doc
}

// collectCatchUp compares the candidate's log with the leader's. Healthy
// means what it means for any member: it answers as itself, in this
// cluster, in the leader's term. A failed fetch ends the healthy streak.
func collectCatchUp(ctx context.Context, cand Candidate, state *stateFetch, log LeaderLog, st Staging) (*CatchUp, error) {
	res, err := state.wait(ctx)
	if err == nil {
		err = res.err
	}
	if err == nil && res.state.NodeID != cand.ID {
		err = fmt.Errorf("the candidate answered as %q, not %q", res.state.NodeID, cand.ID)
	}
	if err != nil {
		observe(st, false)
		return nil, err
	}
	s := res.state
	leaderIndex, term := log.LastIndex(), log.Term()
	healthy := log.ClusterID() != "" && s.ClusterID == log.ClusterID() && s.Term == term
	c := &CatchUp{
		LeaderLastIndex: leaderIndex, LeaderTerm: term,
		LastIndex: s.LastIndex, LastTerm: s.LastTerm,
		LastContactMS: s.LastContactMS,
		HealthyForMS:  Ms(observe(st, healthy)),
	}
	if leaderIndex > s.LastIndex {
		c.Lag = leaderIndex - s.LastIndex
	}
	if !st.StagedAt.IsZero() {
		c.StagedForMS = Ms(time.Since(st.StagedAt))
	}
	return c, nil
}

func observe(st Staging, healthy bool) time.Duration {
	if st.Observe == nil {
		return 0
	}
	return st.Observe(healthy)
}
