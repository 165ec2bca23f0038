// Package raftglue is the only code in admitd that changes raft membership:
// AddVoter and AddNonvoter accept nothing but an admission.Grant, applied
// with the configuration index it was issued at. It also holds the FSM
// wrapper that carries admitd's state in a host's log (WrapFSM, Host), and
// a ready-made raft node (Open: TCP transport, raft-wal log store, file
// snapshots, the raft fence) for hosts without one, such as admitd serve.
package raftglue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	app   raft.FSM // Config.FSM, or one that keeps nothing
	trans *fencedTransport
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	lock  *os.File

	// lost is why this node is held behind its fence although admitted
	// (checkState), nil when it is not.
	lost     atomic.Pointer[string]
	watching atomic.Bool    // watchAdmission runs
	stop     chan struct{}  // closed by Shutdown
	bg       sync.WaitGroup // watchAdmission

	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts a raft node from cfg.DataDir. It never bootstraps; see Bootstrap.
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, app: cfg.FSM, stop: make(chan struct{})}
	if n.app == nil {
		n.app = noFSM{}
	}
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
	// Local damage is found before raft reads anything (health.go).
	if err := n.verifyWAL(walDir); err != nil {
		return err
	}
	snapInfo, err := n.checkSnapshots()
	if err != nil {
		return err
	}
	if err := n.openWAL(walDir); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, n.cfg.SnapshotRetain, log.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("raftglue: open snapshots: %w", err)
	}
	if n.hadState, err = raft.HasExistingState(n.wal, n.wal, snaps); err != nil {
		return fmt.Errorf("raftglue: read state: %w", err)
	}
	bounds, err := readLogBounds(n.wal)
	if err != nil {
		return n.damaged("reading the raft log in %s: %v", walDir, err)
	}
	note, rec, err := n.readAdmission()
	if err != nil {
		return fmt.Errorf("raftglue: reading the admission record: %w", err)
	}
	lost, err := n.checkState(walDir, bounds, snapInfo, rec)
	if err != nil {
		return err
	}
	if lost != "" {
		if !n.cfg.Fence {
			return fmt.Errorf("%w: %s; with no fence to hold it, it does not start: %s", ErrLostLog, lost, remedy(n.cfg.ID, n.cfg.DataDir))
		}
		// Held, not refused: without raft state it has no configuration and
		// never campaigns, its API stays up for the operator and the
		// leader's health check, and once removed it can be admitted anew.
		log.Error(fmt.Sprintf("%s: this node's raft log is gone or older than its admission; it stays fenced: %s", n.cfg.DataDir, remedy(n.cfg.ID, n.cfg.DataDir)),
			"data_dir", n.cfg.DataDir, "evidence", lost)
		n.lost.Store(&lost)
	}
	// A nil advertise address makes raft advertise the listener's address,
	// which carries the real port when RaftAddr asked for port 0.
	tcp, err := raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, nil, transportMaxPool, transportTimeout, log.Named("transport"))
	if err != nil {
		return fmt.Errorf("raftglue: listen %s: %w", n.cfg.RaftAddr, err)
	}
	n.trans = newFencedTransport(tcp, n.hadState || !n.cfg.Fence || rec != nil && lost == "")
	n.addr = string(n.trans.LocalAddr())
	wrapped := WrapFSM(n.app)
	if err := n.startRaft(wrapped, snaps, snapInfo, walDir); err != nil {
		return err
	}
	n.Host, err = NewHost(n.raft, wrapped, HostOptions{ID: n.cfg.ID, APIURL: n.cfg.APIURL, ApplyTimeout: n.cfg.ApplyTimeout})
	if err != nil {
		return err
	}
	if rec != nil && !rec.Synced && lost == "" {
		n.watchAdmission(note)
	}
	return nil
}

// openWAL opens the log store; a panic in it (a damaged meta store) is an
// error.
func (n *Node) openWAL(walDir string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = n.damaged("opening the raft log in %s panicked: %v", walDir, p)
		}
	}()
	// raft-wal v0.4.0's Close does not close its bolt meta store, whose file
	// lock would then block the next Open forever; own it and close it.
	n.meta = &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir, raftwal.WithLogger(n.cfg.Logger.Named("wal")), raftwal.WithMetaStore(n.meta),
		raftwal.WithSegmentSize(n.cfg.WALSegmentBytes))
	if err != nil {
		return n.damaged("opening the raft log in %s: %v", walDir, err)
	}
	n.wal = wal
	return nil
}

// startRaft runs raft.NewRaft, which panics on a log entry it cannot read;
// that panic, and its errors on the data, become one error naming the file.
func (n *Node) startRaft(fsm raft.FSM, snaps raft.SnapshotStore, snapInfo snapshotInfo, walDir string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = n.recovered("starting raft", p, walDir)
		}
	}()
	r, err := raft.NewRaft(n.cfg.raftConfig(), fsm, n.wal, n.wal, snaps, n.trans)
	switch {
	case err != nil && strings.HasPrefix(err.Error(), "failed to load any existing snapshots"):
		return n.damaged("no snapshot in %s could be restored (%v)", snapInfo.dir, err)
	case err != nil && (strings.HasPrefix(err.Error(), "failed to find last log") || strings.HasPrefix(err.Error(), "failed to get last log")):
		return n.damaged("raft could not read its log in %s: %v", segmentFor(walDir, n.lastWALIndex()), err)
	case err != nil:
		return fmt.Errorf("raftglue: start raft: %w", err)
	}
	n.raft = r
	return nil
}

func (n *Node) lastWALIndex() uint64 {
	last, _ := n.wal.LastIndex()
	return last
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
		close(n.stop)
		n.bg.Wait()
		var errs []error
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
			n.recordLastSeen()
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
	if lost := n.lost.Load(); lost != nil {
		// A new cluster at a member's address, made of a lost member's
		// data directory, is the split its fence is there to prevent.
		return fmt.Errorf("%w: %s; not bootstrapping: %s", ErrLostLog, *lost, remedy(n.cfg.ID, n.cfg.DataDir))
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
// directory loses it with everything else. Once the log arrives the record
// is tied to it (watchAdmission), so a restart that finds the log gone
// keeps the fence closed. An admission is a new start: the records of any
// earlier log in this directory (lastSeenFile) are dropped with it.
func (n *Node) OpenFence(note []byte) error {
	if !n.Fenced() {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, admittedFile), note); err != nil {
		return fmt.Errorf("raftglue: recording the admission: %w", err)
	}
	if err := os.Remove(filepath.Join(n.cfg.DataDir, lastSeenFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raftglue: dropping the record of an earlier log: %w", err)
	}
	n.lost.Store(nil)
	n.trans.open.Store(true)
	n.watchAdmission(note)
	return nil
}

// LostLog says why this node is held behind its fence although it had been
// admitted (its raft log is gone), nil when it is not.
func (n *Node) LostLog() error {
	lost := n.lost.Load()
	if !n.Fenced() || lost == nil {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrLostLog, *lost)
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

// Apply replicates an application command (not an admitd one) through
// the log, for Config.FSM. Leader only.
func (n *Node) Apply(ctx context.Context, data []byte) error {
	_, _, err := n.await(ctx, func(timeout time.Duration) raft.IndexFuture { return n.raft.Apply(data, timeout) })
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
