package raftglue

import (
	"time"

	"github.com/hashicorp/raft"
)

// RaftAPI lists the *raft.Raft methods admitd uses on a host's raft, so
// the surface it depends on stays visible and small, and a fake can stand
// in for it in tests. It never reads LeaderCh or NotifyCh: those are the
// host's; leadership changes are observed through RegisterObserver.
type RaftAPI interface {
	State() raft.RaftState
	LeaderWithID() (raft.ServerAddress, raft.ServerID)
	GetConfiguration() raft.ConfigurationFuture
	AddVoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	AddNonvoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	RemoveServer(id raft.ServerID, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	DemoteVoter(id raft.ServerID, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	ApplyLog(log raft.Log, timeout time.Duration) raft.ApplyFuture
	Barrier(timeout time.Duration) raft.Future
	LastContact() time.Time
	Stats() map[string]string
	LastIndex() uint64
	CurrentTerm() uint64
	RegisterObserver(or *raft.Observer)
	DeregisterObserver(or *raft.Observer)
}

var _ RaftAPI = (*raft.Raft)(nil)
