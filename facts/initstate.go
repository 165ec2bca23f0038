package facts

import "context"

// collectInitState reports what the candidate says about itself. Unlike
// reachability, a failed fetch leaves nothing to report: the section is
// uncollected, so no policy can read "not initialized" into it.
func collectInitState(ctx context.Context, state *stateFetch) (*InitState, error) {
	res, err := state.wait(ctx)
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	s := res.state
	return &InitState{
		NodeID: s.NodeID, Initialized: s.Initialized, ClusterID: s.ClusterID,
		LastIndex: s.LastIndex, LastTerm: s.LastTerm, Version: s.Version,
	}, nil
}
