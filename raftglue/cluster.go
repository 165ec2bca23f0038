package raftglue

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/facts"
)

var _ facts.ClusterView = (*Node)(nil)

// ClusterConfig implements facts.ClusterView on the leader (ErrNotLeader
// elsewhere). Index and Servers are one committed configuration entry and
// its index, so a Grant's prevIndex names exactly the servers the policy saw.
func (n *Node) ClusterConfig(ctx context.Context) (facts.ClusterConfig, error) {
	if !n.IsLeader() {
		return facts.ClusterConfig{}, ErrNotLeader
	}
	index, servers, err := n.committedConfig(ctx)
	if err != nil {
		return facts.ClusterConfig{}, err
	}
	leaderAddr, leaderID := n.raft.LeaderWithID()
	out := facts.ClusterConfig{
		ClusterID:  n.ClusterID(),
		Index:      index,
		Term:       n.raft.CurrentTerm(),
		SelfID:     n.cfg.ID,
		LeaderID:   string(leaderID),
		LeaderAddr: string(leaderAddr),
		Tombstones: n.fsm.tombstones(),
		Staged:     slices.Sorted(maps.Keys(n.fsm.staged())),
		LastIndex:  n.raft.LastIndex(),
	}
	members := n.fsm.members()
	for _, s := range servers {
		out.Servers = append(out.Servers, facts.ConfigServer{
			ID:       string(s.ID),
			Address:  string(s.Address),
			Suffrage: suffrageName(s.Suffrage),
			APIURL:   members[string(s.ID)].APIURL,
		})
	}
	return out, nil
}

// committedConfig reads the configuration the FSM saw committed, with its
// index. raft v1.8.0's GetConfiguration().Index() is always 0 (and 0 as
// prevIndex disables raft's check), so the index comes from
// StoreConfiguration. If the FSM lags raft's latest configuration (just
// after an election or a change) a barrier lets it catch up; if a change is
// still in flight the older pair is returned and a change built on it fails
// with ErrConfigChanged, which is the safe outcome.
func (n *Node) committedConfig(ctx context.Context) (uint64, []raft.Server, error) {
	index, servers := n.fsm.configuration()
	if index != 0 && slices.Equal(servers, n.latestServers()) {
		return index, servers, nil
	}
	if err := n.barrier(ctx); err != nil {
		return 0, nil, err
	}
	index, servers = n.fsm.configuration()
	if index == 0 {
		return 0, nil, errors.New("raftglue: no committed configuration yet")
	}
	return index, servers, nil
}

func (n *Node) latestServers() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}
