package raftglue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// ErrFenced answers raft RPCs sent to a node that has not been admitted.
var ErrFenced = errors.New("raftglue: this node has no raft state and has not been admitted; raft RPCs are refused")

// fencedTransport refuses inbound raft RPCs until the fence opens: when the
// node had state at start, bootstraps, or a leader tells it, through the
// API, that it admitted it. Without it a node whose data directory was
// wiped and that restarts at a member's address would be re-synced by the
// leader as that member, skipping admission, and, having lost its record
// of the votes it cast, could vote twice in one term.
type fencedTransport struct {
	*raft.NetworkTransport
	open      atomic.Bool
	ch        chan raft.RPC
	done      chan struct{}
	closeOnce sync.Once
}

func newFencedTransport(inner *raft.NetworkTransport, open bool) *fencedTransport {
	f := &fencedTransport{NetworkTransport: inner, ch: make(chan raft.RPC), done: make(chan struct{})}
	f.open.Store(open)
	go f.relay()
	return f
}

// Consumer is where raft reads the RPCs that passed the fence.
func (f *fencedTransport) Consumer() <-chan raft.RPC { return f.ch }

// SetHeartbeatHandler fences the heartbeat fast path too.
func (f *fencedTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		f.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	f.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		if !f.open.Load() {
			rpc.Respond(nil, ErrFenced)
			return
		}
		cb(rpc)
	})
}

func (f *fencedTransport) relay() {
	in := f.NetworkTransport.Consumer()
	for {
		var rpc raft.RPC
		select {
		case rpc = <-in:
		case <-f.done:
			return
		}
		if !f.open.Load() && !isProbe(rpc) {
			rpc.Respond(nil, ErrFenced)
			continue
		}
		select {
		case f.ch <- rpc:
		case <-f.done:
			return
		}
	}
}

// Close stops the relay and closes the network transport.
func (f *fencedTransport) Close() error {
	f.closeOnce.Do(func() { close(f.done) })
	return f.NetworkTransport.Close()
}

// isProbe matches the gate's raft probe: a pre-vote at term 0, which no
// raft candidate sends (their terms start at 1). Raft answers it without
// persisting anything, so it may pass the fence: it is how a leader learns
// that the node behind the fence is fresh, and who it is.
func isProbe(rpc raft.RPC) bool {
	req, ok := rpc.Command.(*raft.RequestPreVoteRequest)
	return ok && req.Term == 0
}

// AdmittedNote is what OpenFence recorded in the data directory (the
// leader's POST /v1/admitted body), nil when no leader admitted this node
// before it had raft state. The API reads it back to refuse a replay of
// that admission after a restart.
func (n *Node) AdmittedNote() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, admittedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
