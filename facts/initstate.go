package facts

import "context"

// collectInitState reports what the candidate's raft server and, when it
// has one, its API say about its state. A source that did not answer
// leaves nothing to report: the section is uncollected, so no policy can
// read "not initialized" into it.
func collectInitState(ctx context.Context, cand Candidate, state *stateFetch, rf *raftFetch) (*InitState, error) {
	answer, err := rf.wait(ctx)
	if err != nil {
		return nil, err
	}
	if err := answer.answerError(); err != nil {
		return nil, err
	}
	if cand.APIURL == "" {
		return &InitState{
			Sources: []string{SourceRaft}, Raft: answer.initFact(),
			NodeID: answer.ID, Initialized: answer.hasState(), ClusterID: "", LastIndex: answer.LastIndex,
		}, nil
	}
	res, err := state.wait(ctx)
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	s := res.state
	return &InitState{
		Sources: []string{SourceRaft, SourceAPI}, Raft: answer.initFact(),
		NodeID: s.NodeID, Initialized: s.Initialized, ClusterID: s.ClusterID,
		LastIndex: s.LastIndex, LastTerm: s.LastTerm, Version: s.Version,
	}, nil
}
