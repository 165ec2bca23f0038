package raftglue

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Extension marks admitd's own log entries. raft replicates Log.Extensions
// with the entry and hands it to FSM.Apply on every node, so admitd's
// commands travel in the host's log without touching the host's commands.
var Extension = []byte("admitd.v1")

// snapshotMagic opens every snapshot the wrapper writes; a snapshot without
// it was taken before the host added the wrapper and belongs to the host.
const snapshotMagic = "admitd wrapped fsm snapshot v1\n"

// FSM wraps a host's raft.FSM: entries marked with Extension go to admitd's
// replicated state, every other entry to the host, in order. A snapshot
// carries both states. It implements raft.BatchingFSM and
// raft.ConfigurationStore whatever the host implements, and gives the host
// exactly the calls raft would have made on the host alone.
type FSM struct {
	host  raft.FSM
	batch raft.BatchingFSM        // host, when it batches
	confs raft.ConfigurationStore // host, when it stores configurations
	st    *fsm

	// restoredLegacy is set when a snapshot from before the wrapper was
	// restored: admitd's state (and the configuration index) starts empty.
	mu             sync.Mutex
	restoredLegacy bool
	// touched is set by the first call from raft: a leader whose wrapper
	// raft never called after a barrier was given another FSM.
	touched atomic.Bool
}

var (
	_ raft.BatchingFSM        = (*FSM)(nil)
	_ raft.ConfigurationStore = (*FSM)(nil)
)

// WrapFSM wraps host; pass the result to raft.NewRaft in place of host.
// A nil host is allowed for a node that replicates nothing of its own.
func WrapFSM(host raft.FSM) *FSM {
	w := &FSM{host: host, st: newFSM()}
	w.batch, _ = host.(raft.BatchingFSM)
	w.confs, _ = host.(raft.ConfigurationStore)
	return w
}

// Host is the wrapped FSM.
func (w *FSM) Host() raft.FSM { return w.host }

func isAdmitd(l *raft.Log) bool {
	return l.Type == raft.LogCommand && bytes.Equal(l.Extensions, Extension)
}

// Apply is what raft calls for one command when it does not batch.
func (w *FSM) Apply(l *raft.Log) any {
	return w.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies admitd's entries to its state and hands the rest to
// the host: to its ApplyBatch when it batches (configuration entries
// included, as raft does), else one Apply per command and
// StoreConfiguration per configuration entry, as raft's applySingle does.
func (w *FSM) ApplyBatch(logs []*raft.Log) []any {
	w.touched.Store(true)
	out := make([]any, len(logs))
	var hostLogs []*raft.Log
	var hostAt []int
	for i, l := range logs {
		switch {
		case isAdmitd(l):
			out[i] = w.st.Apply(l)
		case l.Type == raft.LogConfiguration:
			w.st.StoreConfiguration(l.Index, raft.DecodeConfiguration(l.Data))
			if w.batch != nil {
				hostLogs, hostAt = append(hostLogs, l), append(hostAt, i)
			} else if w.confs != nil {
				w.confs.StoreConfiguration(l.Index, raft.DecodeConfiguration(l.Data))
			}
		case l.Type == raft.LogCommand && w.host != nil:
			if w.batch != nil {
				hostLogs, hostAt = append(hostLogs, l), append(hostAt, i)
			} else {
				out[i] = w.host.Apply(l)
			}
		}
	}
	if len(hostLogs) > 0 {
		resp := w.batch.ApplyBatch(hostLogs)
		for j, i := range hostAt {
			if j < len(resp) {
				out[i] = resp[j]
			}
		}
	}
	return out
}

// StoreConfiguration is called by raft only when it does not batch, which
// never happens with the wrapper; it is here so a caller that does call it
// gets the same effect as a configuration entry in ApplyBatch.
func (w *FSM) StoreConfiguration(index uint64, c raft.Configuration) {
	w.touched.Store(true)
	w.st.StoreConfiguration(index, c)
	if w.confs != nil {
		w.confs.StoreConfiguration(index, c)
	}
}

// Snapshot captures admitd's state and the host's.
func (w *FSM) Snapshot() (raft.FSMSnapshot, error) {
	own, err := w.st.Snapshot()
	if err != nil {
		return nil, err
	}
	snap := &wrappedSnapshot{own: own.(fsmSnapshot)}
	if w.host != nil {
		if snap.host, err = w.host.Snapshot(); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// Restore reads a wrapped snapshot, or hands a snapshot taken before the
// wrapper whole to the host and starts admitd's state empty.
func (w *FSM) Restore(rc io.ReadCloser) error {
	w.touched.Store(true)
	br := bufio.NewReader(rc)
	head, err := br.Peek(len(snapshotMagic))
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		rc.Close()
		return fmt.Errorf("raftglue: read snapshot: %w", err)
	}
	body := &readCloser{Reader: br, Closer: rc}
	if string(head) != snapshotMagic {
		w.setLegacy(true)
		w.st.reset()
		return w.restoreHost(body)
	}
	if err := w.restoreOwn(br); err != nil {
		rc.Close()
		return err
	}
	w.setLegacy(false)
	return w.restoreHost(body)
}

func (w *FSM) restoreOwn(br *bufio.Reader) error {
	if _, err := br.Discard(len(snapshotMagic)); err != nil {
		return fmt.Errorf("raftglue: read snapshot: %w", err)
	}
	var size uint64
	if err := binary.Read(br, binary.BigEndian, &size); err != nil {
		return fmt.Errorf("raftglue: read snapshot header: %w", err)
	}
	if size > maxOwnSnapshot {
		return fmt.Errorf("raftglue: snapshot header says %d bytes of admitd state, over %d", size, maxOwnSnapshot)
	}
	own := io.LimitReader(br, int64(size))
	if err := w.st.Restore(io.NopCloser(own)); err != nil {
		return err
	}
	// The host's bytes start exactly after the declared length.
	if n, _ := io.Copy(io.Discard, own); n > 0 {
		return fmt.Errorf("raftglue: snapshot: %d bytes of admitd state after its JSON", n)
	}
	return nil
}

// maxOwnSnapshot bounds admitd's part of a snapshot: ids, URLs, tombstones.
const maxOwnSnapshot = 256 << 20

func (w *FSM) restoreHost(body io.ReadCloser) error {
	if w.host == nil {
		_, _ = io.Copy(io.Discard, body)
		return body.Close()
	}
	return w.host.Restore(body)
}

func (w *FSM) setLegacy(v bool) {
	w.mu.Lock()
	w.restoredLegacy = v
	w.mu.Unlock()
}

// RestoredLegacy says admitd's state came from nothing: the last snapshot
// restored was taken before the wrapper was added.
func (w *FSM) RestoredLegacy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restoredLegacy
}

type readCloser struct {
	io.Reader
	io.Closer
}

// wrappedSnapshot writes the magic, admitd's state with its length, then
// the host's snapshot, into one sink.
type wrappedSnapshot struct {
	own  fsmSnapshot
	host raft.FSMSnapshot
}

func (s *wrappedSnapshot) Persist(sink raft.SnapshotSink) error {
	var head bytes.Buffer
	head.WriteString(snapshotMagic)
	_ = binary.Write(&head, binary.BigEndian, uint64(len(s.own)))
	head.Write(s.own)
	if _, err := sink.Write(head.Bytes()); err != nil {
		_ = sink.Cancel()
		return err
	}
	if s.host == nil {
		return sink.Close()
	}
	return s.host.Persist(sink)
}

func (s *wrappedSnapshot) Release() {
	if s.host != nil {
		s.host.Release()
	}
}

// encodeCommand is one admitd command as a log entry for raft.ApplyLog.
func encodeCommand(c command) (raft.Log, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return raft.Log{}, err
	}
	return raft.Log{Data: data, Extensions: Extension}, nil
}
