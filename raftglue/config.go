package raftglue

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// Config describes one raft node. Zero durations and counts take LAN
// defaults (raft's own, except where noted).
type Config struct {
	ID       string // raft server id, stable for the node's lifetime
	RaftAddr string // host:port to bind and advertise; port 0 picks a free one
	APIURL   string // this node's admitd API, registered in the FSM
	DataDir  string // holds wal/ and snapshots/
	Logger   hclog.Logger
	// FSM is the application state the node replicates beside admitd's,
	// wrapped with WrapFSM like any host's. Nil: none; the daemon's only
	// state is admitd's.
	FSM raft.FSM

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	SnapshotRetain    int           // default 2
	SnapshotThreshold uint64        // entries between automatic snapshots
	SnapshotInterval  time.Duration // how often to check SnapshotThreshold
	TrailingLogs      uint64        // entries kept after a snapshot
	// Fence refuses raft RPCs while the node has no state, until it
	// bootstraps or OpenFence is called on its admission (fence.go).
	Fence bool
	// WALSegmentBytes sizes the log's segments (default 64 MiB). The log
	// is only compacted a whole segment at a time.
	WALSegmentBytes int

	// ApplyTimeout bounds raft enqueueing when the caller's context has no
	// deadline. Default 10s.
	ApplyTimeout time.Duration
}

const (
	defaultApplyTimeout   = 10 * time.Second
	defaultSnapshotRetain = 2
	transportMaxPool      = 3
	transportTimeout      = 10 * time.Second
)

func (c Config) validate() error {
	switch {
	case c.ID == "":
		return errors.New("raftglue: Config.ID is required")
	case c.RaftAddr == "":
		return errors.New("raftglue: Config.RaftAddr is required")
	case c.DataDir == "":
		return errors.New("raftglue: Config.DataDir is required")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.SnapshotRetain <= 0 {
		c.SnapshotRetain = defaultSnapshotRetain
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = defaultApplyTimeout
	}
	if c.WALSegmentBytes <= 0 {
		c.WALSegmentBytes = raftwal.DefaultSegmentSize
	}
	return c
}

func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.Logger = c.Logger.Named("raft")
	setDur(&rc.HeartbeatTimeout, c.HeartbeatTimeout)
	setDur(&rc.ElectionTimeout, c.ElectionTimeout)
	setDur(&rc.LeaderLeaseTimeout, c.LeaderLeaseTimeout)
	setDur(&rc.CommitTimeout, c.CommitTimeout)
	setDur(&rc.SnapshotInterval, c.SnapshotInterval)
	if c.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = c.SnapshotThreshold
	}
	if c.TrailingLogs > 0 {
		rc.TrailingLogs = c.TrailingLogs
	}
	return rc
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}
