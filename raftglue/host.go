package raftglue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Host is admitd's side of a raft server it does not own: the host's raft,
// seen through RaftAPI, and the FSM wrapper the host gave that raft. It is
// the only code that changes membership (membership.go).
type Host struct {
	raft         RaftAPI
	wrap         *FSM
	fsm          *fsm
	id           string // this server's id; "" learns it while leading
	apiURL       string // registered for this server by EnsureClusterID
	applyTimeout time.Duration
	fsmChecked   atomic.Bool
}

// HostOptions are what a Host needs beyond raft and the wrapper.
type HostOptions struct {
	// ID is this server's raft id, when the host knows it. Without it the
	// id is learned from raft while this server leads.
	ID string
	// APIURL is registered for this server, so members can reach its API.
	APIURL string
	// ApplyTimeout bounds raft enqueueing when a context has no deadline.
	// Default 10s.
	ApplyTimeout time.Duration
}

// Errors for a Host built from the wrong parts.
var (
	ErrNoRaft = errors.New("raftglue: a raft server is required")
	ErrNoFSM  = errors.New("raftglue: the FSM wrapper given to raft.NewRaft is required (admitd.WrapFSM)")
	// ErrWrongFSM: raft applies its log to an FSM other than this wrapper.
	ErrWrongFSM = errors.New("raftglue: raft was not given this FSM: pass the wrapper from WrapFSM to raft.NewRaft")
)

// NewHost builds a Host over r, which must have been created with w as its FSM.
func NewHost(r RaftAPI, w *FSM, o HostOptions) (*Host, error) {
	if r == nil {
		return nil, ErrNoRaft
	}
	if w == nil {
		return nil, ErrNoFSM
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = defaultApplyTimeout
	}
	return &Host{raft: r, wrap: w, fsm: w.st, id: o.ID, apiURL: o.APIURL, applyTimeout: o.ApplyTimeout}, nil
}

// Raft is the raft server this Host drives.
func (h *Host) Raft() RaftAPI { return h.raft }

// FSM is the wrapper.
func (h *Host) FSM() *FSM { return h.wrap }

// EnsureClusterID sets a random cluster id if none is set yet and registers
// this server's API URL when it has one. Leader only. The FSM keeps the
// first id, so a racing second call cannot change it.
func (h *Host) EnsureClusterID(ctx context.Context) error {
	if h.ClusterID() == "" {
		id, err := newClusterID()
		if err != nil {
			return err
		}
		if _, err := h.apply(ctx, command{Op: opSetClusterID, ClusterID: id}); err != nil {
			return err
		}
	}
	if h.apiURL == "" {
		return nil
	}
	if m, ok := h.fsm.members()[h.ID()]; ok && m.APIURL == h.apiURL {
		return nil
	}
	_, err := h.apply(ctx, command{Op: opRegister, ID: h.ID(), APIURL: h.apiURL})
	return err
}

func newClusterID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("raftglue: cluster id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// apply replicates one admitd command, marked with Extension, and waits,
// bounded by ctx, until the leader has applied it.
func (h *Host) apply(ctx context.Context, c command) (uint64, error) {
	if err := h.CheckFSM(ctx); err != nil {
		return 0, err
	}
	entry, err := encodeCommand(c)
	if err != nil {
		return 0, err
	}
	index, resp, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return h.raft.ApplyLog(entry, timeout)
	})
	if err != nil {
		return 0, err
	}
	if respErr, ok := resp.(error); ok {
		return index, respErr
	}
	return index, nil
}

// CheckFSM proves, once, that raft applies its log to this wrapper before
// anything of admitd's is written: after a barrier on the leader, raft has
// handed the wrapper at least one entry or snapshot (a bootstrapped log
// starts with a configuration entry), unless it was given another FSM.
func (h *Host) CheckFSM(ctx context.Context) error {
	if h.fsmChecked.Load() || h.wrap.touched.Load() {
		h.fsmChecked.Store(true)
		return nil
	}
	if err := h.barrier(ctx); err != nil {
		return err
	}
	if !h.wrap.touched.Load() {
		return ErrWrongFSM
	}
	h.fsmChecked.Store(true)
	return nil
}

// await runs a raft call and waits for its future in a goroutine, so ctx
// bounds the whole call: raft's own timeout only bounds enqueueing.
func (h *Host) await(ctx context.Context, call func(time.Duration) raft.IndexFuture) (uint64, any, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	type result struct {
		index uint64
		resp  any
		err   error
	}
	done := make(chan result, 1)
	timeout := h.enqueueTimeout(ctx)
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

func (h *Host) enqueueTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return h.applyTimeout
}

// barrier waits until everything before it is applied to the FSM. Leader only.
func (h *Host) barrier(ctx context.Context) error {
	_, _, err := h.await(ctx, func(timeout time.Duration) raft.IndexFuture {
		return barrierFuture{h.raft.Barrier(timeout)}
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

// ID is this server's raft id: the configured one, else, while leading,
// the id raft reports for the leader.
func (h *Host) ID() string {
	if h.id != "" {
		return h.id
	}
	if h.IsLeader() {
		return h.LeaderID()
	}
	return ""
}

// ClusterID is the replicated cluster id, "" until one is known here.
func (h *Host) ClusterID() string { return h.fsm.clusterID() }

// LastIndex is the last log index in stable storage (log or snapshot).
func (h *Host) LastIndex() uint64 { return h.raft.LastIndex() }

// LastTerm is the term of the last log entry.
func (h *Host) LastTerm() uint64 {
	t, _ := strconv.ParseUint(h.raft.Stats()["last_log_term"], 10, 64)
	return t
}

// LastContact is when this server last heard from a leader (zero if
// never; the leader itself reports now).
func (h *Host) LastContact() time.Time {
	if h.IsLeader() {
		return time.Now()
	}
	return h.raft.LastContact()
}

// Term is the current raft term.
func (h *Host) Term() uint64 { return h.raft.CurrentTerm() }

// State is raft's state name: "Leader", "Follower", "Candidate", "Shutdown".
func (h *Host) State() string { return h.raft.State().String() }

// IsLeader reports whether this server is the leader right now.
func (h *Host) IsLeader() bool { return h.raft.State() == raft.Leader }

// LeaderID is the current leader's id as this server knows it, or "".
func (h *Host) LeaderID() string {
	_, id := h.raft.LeaderWithID()
	return string(id)
}

// LeaderAddr is the current leader's raft address as this server knows it, or "".
func (h *Host) LeaderAddr() string {
	addr, _ := h.raft.LeaderWithID()
	return string(addr)
}

// Members is the replicated id -> member metadata map (a copy).
func (h *Host) Members() map[string]Member { return h.fsm.members() }

// Tombstones lists removed server ids, sorted.
func (h *Host) Tombstones() []string { return h.fsm.tombstones() }
