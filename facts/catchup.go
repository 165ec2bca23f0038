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
	gather(ctx, cfg, doc, view, func(ctx context.Context, state *stateFetch, rf *raftFetch) {
		doc.CatchUp = runSection(ctx, cfg.InitState, func(ctx context.Context) (*CatchUp, error) {
			if cand.APIURL == "" {
				return collectCatchUpRaft(ctx, cand, rf, log, st)
			}
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
		Sources:       []string{SourceAPI},
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

// collectCatchUpRaft measures a candidate that serves no /v1/state from the
// leader's side: its raft server's answer gives its term and last index,
// and the answer itself is the leader hearing from it (last_contact_ms is
// the round trip). Healthy means it answers as itself in the leader's term.
func collectCatchUpRaft(ctx context.Context, cand Candidate, rf *raftFetch, log LeaderLog, st Staging) (*CatchUp, error) {
	a, err := rf.wait(ctx)
	if err == nil {
		err = a.answerError()
	}
	if err == nil && a.ID != cand.ID {
		err = fmt.Errorf("the raft server at %s answered as %q, not %q", cand.RaftAddr, a.ID, cand.ID)
	}
	if err == nil && !a.LastIndexKnown {
		err = fmt.Errorf("the raft server at %s did not report its last index (term %d)", cand.RaftAddr, a.Term)
	}
	if err != nil {
		observe(st, false)
		return nil, err
	}
	leaderIndex, term := log.LastIndex(), log.Term()
	c := &CatchUp{
		LeaderLastIndex: leaderIndex, LeaderTerm: term,
		LastIndex: a.LastIndex, LastTerm: a.Term,
		LastContactMS: a.RTTMS,
		HealthyForMS:  Ms(observe(st, term > 0 && a.Term == term)),
		Sources:       []string{SourceRaft},
	}
	if leaderIndex > a.LastIndex {
		c.Lag = leaderIndex - a.LastIndex
	}
	if !st.StagedAt.IsZero() {
		c.StagedForMS = Ms(time.Since(st.StagedAt))
	}
	return c, nil
}
