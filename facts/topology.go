package facts

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

var errNoClusterView = errors.New("no cluster view")

// collectTopology reads the configuration from view and checks every other
// member's /v1/state concurrently under the section's deadline. Meanwhile
// it resolves every member's raft address, the leader's, and candAddr (the
// candidate's raft address; "" when there is no candidate to compare).
func collectTopology(ctx context.Context, cfg CollectConfig, view ClusterView, candAddr string) (*Topology, error) {
	if view == nil {
		return nil, errNoClusterView
	}
	cc, err := view.ClusterConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	addrs := []string{cc.LeaderAddr, candAddr}
	for _, cs := range cc.Servers {
		addrs = append(addrs, cs.Address)
	}
	var resolved map[string]Resolution
	rctx, cancel := probeContext(ctx) // an unresolved address is a fact, not a lost section
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { resolved = resolveAll(rctx, addrs) })
	servers := checkMembers(ctx, cfg, cc)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range servers {
		servers[i].Resolution = resolution(resolved, servers[i].Address)
	}
	t := &Topology{
		ClusterID:   cc.ClusterID,
		ConfigIndex: cc.Index,
		Leader:      Leader{ID: cc.LeaderID, Address: cc.LeaderAddr, Resolution: resolution(resolved, cc.LeaderAddr)},
		Servers:     servers,
		Tombstones:  append([]string{}, cc.Tombstones...),
		Staged:      append([]string{}, cc.Staged...),
		MaxStaged:   cfg.MaxStaged,
	}
	if candAddr != "" {
		t.CandidateAddress = &CandidateAddress{Address: candAddr, Resolution: resolution(resolved, candAddr)}
	}
	return t, nil
}

// checkMembers fills one Server per configured server, in config order.
func checkMembers(ctx context.Context, cfg CollectConfig, cc ClusterConfig) []Server {
	pctx, cancel := probeContext(ctx)
	defer cancel()
	out := make([]Server, len(cc.Servers))
	var wg sync.WaitGroup
	for i, cs := range cc.Servers {
		out[i] = Server{ID: cs.ID, Address: cs.Address, Suffrage: cs.Suffrage}
		if isSelfLeader(cc, cs.ID) {
			out[i].Healthy, out[i].LastIndex = true, cc.LastIndex // we are the leader answering this
			continue
		}
		wg.Go(func() {
			h := memberHealth(pctx, cfg, cc, cs)
			out[i].LastIndex, out[i].PolicyRevision = h.lastIndex, h.revision
			out[i].Lag = lag(cc.LastIndex, h.lastIndex)
			out[i].Healthy = h.answered && out[i].Lag <= cfg.MaxMemberLag
		})
	}
	wg.Wait()
	return out
}

func isSelfLeader(cc ClusterConfig, id string) bool {
	return id != "" && cc.SelfID == id && cc.LeaderID == id
}

// memberAnswer is what one member said: whether it answered as itself,
// in this cluster and the leader's term, and how far its log reaches.
type memberAnswer struct {
	answered  bool
	lastIndex uint64
	revision  string
}

// memberHealth is the leader's view of one member: it answers its own
// /v1/state (or, without an API, its raft server answers) as itself, in
// this cluster and in the leader's term. A member on another term is
// either partitioned or lagging behind an election.
func memberHealth(ctx context.Context, cfg CollectConfig, cc ClusterConfig, cs ConfigServer) memberAnswer {
	if cs.APIURL == "" {
		return memberHealthRaft(ctx, cc, cs)
	}
	res := fetchState(ctx, cfg.HTTPClient, cs.APIURL, cfg.MaxStateBytes)
	if res.err != nil || res.state.NodeID != cs.ID {
		return memberAnswer{}
	}
	s := res.state
	ok := cc.ClusterID != "" && s.ClusterID == cc.ClusterID && s.Term == cc.Term
	return memberAnswer{answered: ok, lastIndex: s.LastIndex, revision: s.PolicyRevision}
}

// lag is how far behind the leader's last index a member's is.
func lag(leader, member uint64) uint64 {
	if leader > member {
		return leader - member
	}
	return 0
}
