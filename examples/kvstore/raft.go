package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/admitd/admitd"
)

// node is this server's raft and the stores under it.
type node struct {
	raft     *raft.Raft
	fsm      *admitd.FSM // the store, wrapped: what raft applies entries to
	hasState bool        // raft state existed on disk at start
	trans    *raft.NetworkTransport
	wal      *raftwal.WAL
	meta     *metadb.BoltMetaDB
}

// openRaft starts raft on dataDir with a raft-wal log (also the stable
// store), file snapshots and a TCP transport bound to, and advertising,
// raftAddr. It never bootstraps.
func openRaft(id, raftAddr, dataDir string, st *store, log hclog.Logger) (*node, error) {
	walDir := filepath.Join(dataDir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, err
	}
	n := &node{fsm: admitd.WrapFSM(st)}
	// raft-wal v0.4.0's Close does not close the bolt meta store it opens
	// itself, and its file lock would block the next Open: give it one we
	// close.
	n.meta = &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir, raftwal.WithMetaStore(n.meta), raftwal.WithLogger(log.Named("wal")))
	if err != nil {
		n.meta.Close()
		return nil, fmt.Errorf("open wal: %w", err)
	}
	n.wal = wal
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, log.Named("snapshots"))
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	if n.hasState, err = raft.HasExistingState(wal, wal, snaps); err != nil {
		n.closeStores()
		return nil, err
	}
	// A nil advertise address advertises the listener's: raftAddr must be
	// an address peers can dial (127.0.0.1:7001, 10.0.0.5:7001), not :7001.
	n.trans, err = raft.NewTCPTransportWithLogger(raftAddr, nil, 3, 10*time.Second, log.Named("transport"))
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("listen %s: %w", raftAddr, err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.Logger = log.Named("raft")
	// Pass the wrapper, not the store: admitd's own entries travel in the
	// same log and the wrapper keeps them away from the store.
	n.raft, err = raft.NewRaft(conf, n.fsm, wal, wal, snaps, n.trans)
	if err != nil {
		n.trans.Close()
		n.closeStores()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	return n, nil
}

// bootstrap makes this server the single voter of a new cluster.
func (n *node) bootstrap(id string) error {
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(id), Address: n.trans.LocalAddr(),
	}}}
	return n.raft.BootstrapCluster(conf).Error()
}

// shutdown stops raft (which closes the transport), then the stores.
func (n *node) shutdown() error {
	err := n.raft.Shutdown().Error()
	return errors.Join(err, n.closeStores())
}

func (n *node) closeStores() error {
	return errors.Join(n.wal.Close(), n.meta.Close())
}
