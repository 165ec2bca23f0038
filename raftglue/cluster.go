package raftglue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/facts"
)

var _ facts.ClusterView = (*Host)(nil)

// ClusterConfig implements facts.ClusterView on the leader (ErrNotLeader
// elsewhere). Index and Servers are one committed configuration entry and
// its index, so a Grant's prevIndex names exactly the servers the policy saw.
func (h *Host) ClusterConfig(ctx context.Context) (facts.ClusterConfig, error) {
	if !h.IsLeader() {
		return facts.ClusterConfig{}, ErrNotLeader
	}
	index, servers, err := h.committedConfig(ctx)
	if err != nil {
		return facts.ClusterConfig{}, err
	}
	leaderAddr, leaderID := h.raft.LeaderWithID()
	out := facts.ClusterConfig{
		ClusterID:  h.ClusterID(),
		Index:      index,
		Term:       h.raft.CurrentTerm(),
		SelfID:     h.ID(),
		LeaderID:   string(leaderID),
		LeaderAddr: string(leaderAddr),
		Tombstones: h.fsm.tombstones(),
		Staged:     slices.Sorted(maps.Keys(h.fsm.staged())),
		LastIndex:  h.raft.LastIndex(),
	}
	members := h.fsm.members()
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
func (h *Host) committedConfig(ctx context.Context) (uint64, []raft.Server, error) {
	if err := h.CheckFSM(ctx); err != nil {
		return 0, nil, err
	}
	index, servers := h.fsm.configuration()
	if index != 0 && slices.Equal(servers, h.latestServers()) {
		return index, servers, nil
	}
	if err := h.barrier(ctx); err != nil {
		return 0, nil, err
	}
	index, servers = h.fsm.configuration()
	if index == 0 && len(h.latestServers()) > 0 {
		if err := h.refreshConfiguration(ctx); err != nil {
			return 0, nil, err
		}
		index, servers = h.fsm.configuration()
	}
	if index == 0 {
		return 0, nil, errors.New("raftglue: no committed configuration yet")
	}
	return index, servers, nil
}

// refreshConfiguration commits the current configuration once more, so the
// FSM learns its index. It is needed once after a snapshot taken before the
// wrapper was restored (the index was inside it) and no configuration
// entry came since: the leader re-adds itself as the voter it is, which
// changes no server.
func (h *Host) refreshConfiguration(ctx context.Context) error {
	addr, id := h.raft.LeaderWithID()
	if !h.IsLeader() || id == "" {
		return ErrNotLeader
	}
	_, _, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return h.raft.AddVoter(id, addr, 0, timeout)
	})
	if err != nil {
		return fmt.Errorf("raftglue: committing the configuration again to learn its index: %w", err)
	}
	return h.barrier(ctx)
}

func (h *Host) latestServers() []raft.Server {
	f := h.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}
