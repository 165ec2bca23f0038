package facts

import "context"

// NodeState is the body of GET /v1/state, served by every node and read by
// the init-state collector and by topology health checks.
type NodeState struct {
	NodeID      string `json:"node_id"`
	RaftAddr    string `json:"raft_addr"`
	APIURL      string `json:"api_url"`
	Initialized bool   `json:"initialized"`
	ClusterID   string `json:"cluster_id"`
	LastIndex   uint64 `json:"last_index"`
	LastTerm    uint64 `json:"last_term"`
	Term        uint64 `json:"term"`
	// LastContactMS is how long ago this node last heard from a leader
	// (0 on the leader itself, -1 if never).
	LastContactMS  float64 `json:"last_contact_ms"`
	RaftState      string  `json:"raft_state"`
	LeaderID       string  `json:"leader_id"`
	Version        string  `json:"version"`
	PolicyRevision string  `json:"policy_revision"`
}

// ClusterView is what the topology collector needs from the local raft
// node; raftglue implements it.
type ClusterView interface {
	ClusterConfig(ctx context.Context) (ClusterConfig, error)
}

// ClusterConfig is the raft configuration as the leader holds it, with each
// member's API URL from the replicated state.
type ClusterConfig struct {
	ClusterID  string
	Index      uint64 // configuration index from GetConfiguration
	Term       uint64 // the leader's current term
	SelfID     string
	LeaderID   string
	LeaderAddr string
	Servers    []ConfigServer
	// Tombstones are ids removed from the cluster, refused until cleared.
	Tombstones []string
	// Staged are ids of non-voters in stage, not yet promoted.
	Staged []string
	// LastIndex is the leader's last log index.
	LastIndex uint64
}

// ConfigServer is one raft server plus its API URL when known.
type ConfigServer struct {
	ID       string
	Address  string
	Suffrage Suffrage // Voter or Nonvoter
	APIURL   string
}
