// Package raftglue runs the hashicorp/raft node (TCP transport, raft-wal
// log store, file snapshots, a JSON FSM) and is the only code in admitd that
// changes raft membership: AddVoter and AddNonvoter accept nothing but an
// admission.Grant, applied with the configuration index it was issued at.
package raftglue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Node is one running raft server.
type Node struct {
	cfg      Config
	addr     string // advertised raft address (resolved when the port was 0)
	hadState bool   // raft state existed when Open ran

	*Host // admitd's side of this node's raft
	raft  *raft.Raft
	kv    *kvFSM // the daemon's own replicated state, wrapped like any host's
	trans *fencedTransport
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	lock  *os.File

	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts a raft node from cfg.DataDir. It never bootstraps; see Bootstrap.
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, kv: newKVFSM()}
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	log := n.cfg.Logger
	walDir := filepath.Join(n.cfg.DataDir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return fmt.Errorf("raftglue: %w", err)
	}
	var err error
	if n.lock, err = lockDir(n.cfg.DataDir); err != nil {
		return err
	}
	// raft-wal v0.4.0's Close does not close its bolt meta store, whose file
	// lock would then block the next Open forever; own it and close it.
	n.meta = &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir, raftwal.WithLogger(log.Named("wal")), raftwal.WithMetaStore(n.meta),
		raftwal.WithSegmentSize(n.cfg.WALSegmentBytes))
	if err != nil {
		return fmt.Errorf("raftglue: open wal: %w", err)
	}
	n.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, n.cfg.SnapshotRetain, log.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("raftglue: open snapshots: %w", err)
	}
	if n.hadState, err = raft.HasExistingState(wal, wal, snaps); err != nil {
		return fmt.Errorf("raftglue: read state: %w", err)
	}
	// A nil advertise address makes raft advertise the listener's address,
	// which carries the real port when RaftAddr asked for port 0.
	tcp, err := raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, nil, transportMaxPool, transportTimeout, log.Named("transport"))
	if err != nil {
		return fmt.Errorf("raftglue: listen %s: %w", n.cfg.RaftAddr, err)
	}
	n.trans = newFencedTransport(tcp, n.hadState || !n.cfg.Fence || n.admitted())
	n.addr = string(n.trans.LocalAddr())
	wrapped := WrapFSM(n.kv)
	r, err := raft.NewRaft(n.cfg.raftConfig(), wrapped, wal, wal, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("raftglue: start raft: %w", err)
	}
	n.raft = r
	n.Host, err = NewHost(r, wrapped, HostOptions{ID: n.cfg.ID, APIURL: n.cfg.APIURL, ApplyTimeout: n.cfg.ApplyTimeout})
	return err
}

// closeStores releases what a failed Open had already opened.
func (n *Node) closeStores() {
	if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.wal != nil {
		_ = n.wal.Close()
	}
	if n.meta != nil {
		_ = n.meta.Close()
	}
	unlockDir(n.lock)
}

// Shutdown stops raft and closes the transport and the log store. It is
// safe to call more than once.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		var errs []error
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
		}
		errs = append(errs, n.trans.Close(), n.wal.Close(), n.meta.Close())
		unlockDir(n.lock)
		n.shutdownErr = errors.Join(errs...)
	})
	return n.shutdownErr
}

// Bootstrap starts a new single-voter cluster with this node, waits (bounded
// by ctx) to lead it, then records a fresh cluster id and this node's API
// URL. It returns ErrHasState when the node already has raft state.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.hadState {
		return ErrHasState
	}
	n.trans.open.Store(true)
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.addr),
	}}}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("%w: %w", ErrHasState, err)
		}
		return fmt.Errorf("raftglue: bootstrap: %w", err)
	}
	if err := waitFor(ctx, n.IsLeader); err != nil {
		return fmt.Errorf("raftglue: waiting to lead after bootstrap: %w", err)
	}
	return n.EnsureClusterID(ctx)
}

// OpenFence lets raft RPCs in: a leader has admitted this node. The
// admission (note, say who admitted it) is kept in the data directory
// first, so a restart before the log arrives keeps the fence open; a wiped
// directory loses it with everything else.
func (n *Node) OpenFence(note []byte) error {
	if !n.Fenced() {
		return nil
	}
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, admittedFile), note, 0o600); err != nil {
		return fmt.Errorf("raftglue: recording the admission: %w", err)
	}
	n.trans.open.Store(true)
	return nil
}

// admittedFile records, in the data directory, that a leader admitted
// this node before it had any raft state.
const admittedFile = "admitted.json"

// admitted says whether a leader admitted this node in an earlier run.
func (n *Node) admitted() bool {
	_, err := os.Stat(filepath.Join(n.cfg.DataDir, admittedFile))
	return err == nil
}

// Fenced says whether raft RPCs are still refused.
func (n *Node) Fenced() bool { return !n.trans.open.Load() }

// Put replicates key=value through the log as a host command (not an
// admitd one). Leader only. It exists to put load on the log in tests and
// benchmarks.
func (n *Node) Put(ctx context.Context, key, value string) error {
	data, err := json.Marshal(kvCommand{Key: key, Value: value})
	if err != nil {
		return err
	}
	_, _, err = n.await(ctx, func(timeout time.Duration) raft.IndexFuture { return n.raft.Apply(data, timeout) })
	return err
}

// ID is this node's raft server id.
func (n *Node) ID() string { return n.cfg.ID }

// Addr is the raft address this node advertises.
func (n *Node) Addr() string { return n.addr }

// APIURL is this node's configured API URL.
func (n *Node) APIURL() string { return n.cfg.APIURL }

// Snapshot takes a raft snapshot now, for operators and tests. The raft
// handle itself is not exported: membership changes go through a Grant.
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Initialized reports whether this node has raft state or knows a cluster
// id: such a node must never be bootstrapped or admitted as new.
func (n *Node) Initialized() bool {
	return n.hadState || n.raft.LastIndex() > 0 || n.ClusterID() != ""
}

// Get reads an entry written by Put from the local FSM.
func (n *Node) Get(key string) (string, bool) { return n.kv.get(key) }

// Entries is the number of distinct keys written by Put.
func (n *Node) Entries() int { return n.kv.entries() }
