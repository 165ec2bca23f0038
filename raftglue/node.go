// Package raftglue runs the hashicorp/raft node (TCP transport, raft-wal
// log store, file snapshots, a JSON FSM) and is the only code in admitd that
// changes raft membership: AddVoter and AddNonvoter accept nothing but an
// admission.Grant, applied with the configuration index it was issued at.
package raftglue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

	raft  RaftAPI
	fsm   *fsm
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
	n := &Node{cfg: cfg, fsm: newFSM()}
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
	r, err := raft.NewRaft(n.cfg.raftConfig(), n.fsm, wal, wal, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("raftglue: start raft: %w", err)
	}
	n.raft = r
	return nil
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

// EnsureClusterID sets a random cluster id if none is set yet and registers
// this node's API URL. Leader only. Bootstrap calls it; it also repairs a
// node that crashed between bootstrapping and setting the id. The FSM keeps
// the first id, so a racing second call cannot change it.
func (n *Node) EnsureClusterID(ctx context.Context) error {
	if n.ClusterID() == "" {
		id, err := newClusterID()
		if err != nil {
			return err
		}
		if _, err := n.apply(ctx, command{Op: opSetClusterID, ClusterID: id}); err != nil {
			return err
		}
	}
	_, err := n.apply(ctx, command{Op: opRegister, ID: n.cfg.ID, APIURL: n.cfg.APIURL})
	return err
}

func newClusterID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("raftglue: cluster id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Put replicates key=value through the log. Leader only. It exists to put
// load on the log in tests and benchmarks.
func (n *Node) Put(ctx context.Context, key, value string) error {
	_, err := n.apply(ctx, command{Op: opPut, Key: key, Value: value})
	return err
}

// apply replicates one FSM command and waits, bounded by ctx, until the
// leader has applied it.
func (n *Node) apply(ctx context.Context, c command) (uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	index, resp, err := n.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.Apply(data, timeout)
	})
	if err != nil {
		return 0, err
	}
	if respErr, ok := resp.(error); ok {
		return index, respErr
	}
	return index, nil
}

// await runs a raft call and waits for its future in a goroutine, so ctx
// bounds the whole call: raft's own timeout only bounds enqueueing.
func (n *Node) await(ctx context.Context, call func(time.Duration) raft.IndexFuture) (uint64, any, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	type result struct {
		index uint64
		resp  any
		err   error
	}
	done := make(chan result, 1)
	timeout := n.enqueueTimeout(ctx)
	go func() {
		f := call(timeout)
		err := f.Error()
		var res result
		if err == nil {
			res = result{index: f.Index(), resp: response(f)}
		}
		res.err = err
		done <- res
	}()
	select {
	case r := <-done:
		return r.index, r.resp, mapError(r.err)
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

func response(f raft.IndexFuture) any {
	if af, ok := f.(raft.ApplyFuture); ok {
		return af.Response()
	}
	return nil
}

func (n *Node) enqueueTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return n.cfg.ApplyTimeout
}

// barrier waits until everything before it is applied to the FSM. Leader only.
func (n *Node) barrier(ctx context.Context) error {
	_, _, err := n.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return barrierFuture{n.raft.Barrier(timeout)}
	})
	return err
}

// barrierFuture adapts raft's plain Future to IndexFuture for await.
type barrierFuture struct{ raft.Future }

func (barrierFuture) Index() uint64 { return 0 }

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
		case <-t.C:
		}
	}
	return nil
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

// ClusterID is the replicated cluster id, "" until one is known here.
func (n *Node) ClusterID() string { return n.fsm.clusterID() }

// Initialized reports whether this node has raft state or knows a cluster
// id: such a node must never be bootstrapped or admitted as new.
func (n *Node) Initialized() bool {
	return n.hadState || n.raft.LastIndex() > 0 || n.ClusterID() != ""
}

// LastIndex is the last log index in stable storage (log or snapshot).
func (n *Node) LastIndex() uint64 { return n.raft.LastIndex() }

// LastTerm is the term of the last log entry.
func (n *Node) LastTerm() uint64 {
	t, _ := strconv.ParseUint(n.raft.Stats()["last_log_term"], 10, 64)
	return t
}

// LastContact is when this node last heard from a leader (zero if never;
// the leader itself reports now).
func (n *Node) LastContact() time.Time {
	if n.IsLeader() {
		return time.Now()
	}
	return n.raft.LastContact()
}

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// State is raft's state name: "Leader", "Follower", "Candidate", "Shutdown".
func (n *Node) State() string { return n.raft.State().String() }

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderID is the current leader's id as this node knows it, or "".
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// LeaderAddr is the current leader's raft address as this node knows it, or "".
func (n *Node) LeaderAddr() string {
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}

// Members is the replicated id -> member metadata map (a copy).
func (n *Node) Members() map[string]Member { return n.fsm.members() }

// Tombstones lists removed server ids, sorted.
func (n *Node) Tombstones() []string { return n.fsm.tombstones() }

// Get reads an entry written by Put from the local FSM.
func (n *Node) Get(key string) (string, bool) { return n.fsm.get(key) }

// Entries is the number of distinct keys written by Put.
func (n *Node) Entries() int { return n.fsm.entries() }
