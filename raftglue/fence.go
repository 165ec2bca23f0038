package raftglue

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
// leader's POST /v1/admitted body, with the admission record's fields once
// the log arrived), nil when no leader admitted this node before it had
// raft state. The API reads it back to refuse a replay of that admission
// after a restart.
func (n *Node) AdmittedNote() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, admittedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// admissionRecord is what admitted.json says beyond the leader's note. It
// ties the admission to the log it was made for: once this node has that
// log (it applied the cluster id), the record is rewritten with Synced, the
// cluster id and the index it had reached. A record not synced yet (a
// crash between the admission and the log) still opens the fence at the
// next start; a synced one whose log is gone or older does not (checkState).
//
// Index is the commit index, not the last index: a follower's uncommitted
// tail may be truncated by a new leader, a committed entry never is.
type admissionRecord struct {
	Synced    bool   `json:"synced,omitempty"`
	Index     uint64 `json:"index,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
}

// readAdmission returns the note and its record, nil when this node was
// never admitted. A note that is no JSON object (an embedder's own) counts
// as an admission not synced yet, as any note did before records.
func (n *Node) readAdmission() ([]byte, *admissionRecord, error) {
	note, err := n.AdmittedNote()
	if note == nil || err != nil {
		return nil, nil, err
	}
	var rec admissionRecord
	_ = json.Unmarshal(note, &rec)
	return note, &rec, nil
}

// syncedNote is note with the record's fields set: an object note keeps
// its own fields (the API reads its decision id back), anything else is
// kept as a string under "note".
func syncedNote(note []byte, clusterID string, index uint64) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(note, &fields); err != nil || fields == nil {
		raw, _ := json.Marshal(string(note))
		fields = map[string]json.RawMessage{"note": raw}
	}
	fields["synced"] = json.RawMessage("true")
	fields["index"] = json.RawMessage(strconv.FormatUint(index, 10))
	cid, _ := json.Marshal(clusterID)
	fields["cluster_id"] = cid
	return json.Marshal(fields)
}

// watchAdmission rewrites the admission record once the log it was made
// for has arrived: raft has entries, a commit index, and the cluster id is
// applied. It runs until then or until Shutdown.
func (n *Node) watchAdmission(note []byte) {
	if !n.watching.CompareAndSwap(false, true) {
		return
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-tick.C:
			}
			index := max(n.raft.CommitIndex(), n.raft.AppliedIndex())
			cid := n.ClusterID()
			if n.raft.LastIndex() == 0 || index == 0 || cid == "" {
				continue
			}
			b, err := syncedNote(note, cid, index)
			if err == nil {
				err = writeFileAtomic(filepath.Join(n.cfg.DataDir, admittedFile), b)
			}
			if err != nil {
				n.cfg.Logger.Warn("could not record that the admitted log arrived; trying again", "error", err)
				continue
			}
			n.cfg.Logger.Info("admission record synced with the log", "cluster_id", cid, "index", index)
			return
		}
	}()
}
