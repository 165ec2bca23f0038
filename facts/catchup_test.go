package facts

import (
	"encoding/json"
	"testing"
	"time"
)

// fakeLog is the leader's log position for the catch_up collector.
type fakeLog struct {
	clusterID   string
	index, term uint64
}

func (l fakeLog) ClusterID() string { return l.clusterID }
func (l fakeLog) LastIndex() uint64 { return l.index }
func (l fakeLog) Term() uint64      { return l.term }

// streak records what the collector observed and answers a fixed duration.
type streak struct {
	seen []bool
	for_ time.Duration
}

func (s *streak) staging(stagedAt time.Time) Staging {
	return Staging{StagedAt: stagedAt, Observe: func(ok bool) time.Duration {
		s.seen = append(s.seen, ok)
		if !ok {
			return 0
		}
		return s.for_
	}}
}

func stagedState(id, cluster string, index, term uint64, contactMS float64) NodeState {
	st := goodState(id)
	st.Initialized, st.ClusterID, st.LastIndex, st.LastTerm, st.Term, st.LastContactMS = true, cluster, index, term, term, contactMS
	return st
}

func TestGatherPromoteCaughtUp(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, stagedState("n4", "c1", 95, 2, 12)))
	cand := candidate(raftListener(t), srv.URL)
	s := &streak{for_: 11 * time.Second}
	doc := GatherPromote(t.Context(), testConfig(), cand, soloView(), fakeLog{"c1", 100, 2}, s.staging(time.Now().Add(-20*time.Second)))

	if doc.Phase != PhasePromote || doc.InitState != nil {
		t.Fatalf("phase %q, init_state %+v: want promote without init_state", doc.Phase, doc.InitState)
	}
	assertCollected(t, "reachability", doc.Reachability.Section)
	assertCollected(t, "topology", doc.Topology.Section)
	c := doc.CatchUp
	assertCollected(t, "catch_up", c.Section)
	if c.LeaderLastIndex != 100 || c.LeaderTerm != 2 || c.LastIndex != 95 || c.LastTerm != 2 || c.Lag != 5 || c.LastContactMS != 12 {
		t.Fatalf("catch_up %+v", c)
	}
	if c.HealthyForMS != 11000 || c.StagedForMS < 20000 || c.StagedForMS > 30000 {
		t.Fatalf("healthy_for %v, staged_for %v", c.HealthyForMS, c.StagedForMS)
	}
	if len(s.seen) != 1 || !s.seen[0] {
		t.Fatalf("observed %v, want one healthy sample", s.seen)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("candidate /v1/state fetched %d times, want 1", got)
	}
	raw, _ := json.Marshal(doc)
	if _, err := DecodeBytes(raw); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// A candidate on another term or in another cluster is not healthy: its
// streak is broken, though the section is collected.
func TestGatherPromoteUnhealthyBreaksStreak(t *testing.T) {
	for name, st := range map[string]NodeState{
		"other term":    stagedState("n4", "c1", 100, 1, 12),
		"other cluster": stagedState("n4", "c9", 100, 2, 12),
	} {
		srv := newStateServer(t, jsonHandler(200, st))
		s := &streak{for_: time.Hour}
		doc := GatherPromote(t.Context(), testConfig(), candidate(raftListener(t), srv.URL), soloView(), fakeLog{"c1", 100, 2}, s.staging(time.Now()))
		assertCollected(t, name, doc.CatchUp.Section)
		if doc.CatchUp.HealthyForMS != 0 || len(s.seen) != 1 || s.seen[0] {
			t.Fatalf("%s: healthy_for %v, observed %v; want 0 and one unhealthy sample", name, doc.CatchUp.HealthyForMS, s.seen)
		}
	}
}

// A candidate that does not answer, or answers as another node, leaves
// catch_up uncollected and breaks its streak.
func TestGatherPromoteFailures(t *testing.T) {
	cases := map[string]string{
		"answers as another node": newStateServer(t, jsonHandler(200, stagedState("n9", "c1", 100, 2, 1))).URL,
		"not json":                newStateServer(t, rawHandler(200, "<html>")).URL,
		"status 500":              newStateServer(t, jsonHandler(500, stagedState("n4", "c1", 100, 2, 1))).URL,
	}
	for name, url := range cases {
		s := &streak{for_: time.Hour}
		doc := GatherPromote(t.Context(), testConfig(), candidate(raftListener(t), url), soloView(), fakeLog{"c1", 100, 2}, s.staging(time.Now()))
		assertUncollected(t, name, doc.CatchUp)
		if len(s.seen) != 1 || s.seen[0] {
			t.Fatalf("%s: observed %v, want one unhealthy sample", name, s.seen)
		}
	}
}

func TestGatherPromoteCandidateAhead(t *testing.T) {
	srv := newStateServer(t, jsonHandler(200, stagedState("n4", "c1", 105, 2, 1)))
	doc := GatherPromote(t.Context(), testConfig(), candidate(raftListener(t), srv.URL), soloView(), fakeLog{"c1", 100, 2}, Staging{})
	if doc.CatchUp.Lag != 0 || doc.CatchUp.HealthyForMS != 0 || doc.CatchUp.StagedForMS != 0 {
		t.Fatalf("catch_up %+v: a candidate ahead has no lag; no tracker means no streak", doc.CatchUp)
	}
}
