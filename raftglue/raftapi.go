package raftglue

import (
	"time"

	"github.com/hashicorp/raft"
)

// RaftAPI lists the *raft.Raft methods raftglue uses, so the surface it
// depends on stays visible and small.
type RaftAPI interface {
	State() raft.RaftState
	LeaderWithID() (raft.ServerAddress, raft.ServerID)
	GetConfiguration() raft.ConfigurationFuture
	BootstrapCluster(raft.Configuration) raft.Future
	AddVoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	AddNonvoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	RemoveServer(id raft.ServerID, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	Apply(cmd []byte, timeout time.Duration) raft.ApplyFuture
	Barrier(timeout time.Duration) raft.Future
	LastContact() time.Time
	Snapshot() raft.SnapshotFuture
	Stats() map[string]string
	LastIndex() uint64
	CurrentTerm() uint64
	Shutdown() raft.Future
}

var _ RaftAPI = (*raft.Raft)(nil)
