package facts

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// rpcProbeFSM is a state machine that keeps nothing.
type rpcProbeFSM struct{}

func (rpcProbeFSM) Apply(*raft.Log) any                    { return nil }
func (rpcProbeFSM) Snapshot() (raft.FSMSnapshot, error)    { return rpcProbeSnapshot{}, nil }
func (rpcProbeFSM) Restore(rc io.ReadCloser) error         { return rc.Close() }
func (rpcProbeSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (rpcProbeSnapshot) Release()                          {}

type rpcProbeSnapshot struct{}

// rpcProbeNode is an in-process raft server on a 127.0.0.1 TCP transport.
type rpcProbeNode struct {
	id    string
	r     *raft.Raft
	trans *raft.NetworkTransport
}

func (n *rpcProbeNode) addr() string { return string(n.trans.LocalAddr()) }

// stop shuts raft down and closes its transport; both are idempotent, so
// a test may stop a node before its cleanup does.
func (n *rpcProbeNode) stop() {
	_ = n.r.Shutdown().Error()
	_ = n.trans.Close()
}

func rpcProbeConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.Logger = hclog.NewNullLogger()
	return c
}

// newRPCProbeNode starts a never-bootstrapped raft server.
func newRPCProbeNode(t *testing.T, id string) *rpcProbeNode {
	t.Helper()
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, time.Second, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(rpcProbeConfig(id), rpcProbeFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		trans.Close()
		t.Fatal(err)
	}
	n := &rpcProbeNode{id: id, r: r, trans: trans}
	t.Cleanup(n.stop)
	return n
}

// rpcProbeCluster bootstraps every node with one configuration of all of
// them and returns its leader once elected and its log settled.
func rpcProbeCluster(t *testing.T, nodes ...*rpcProbeNode) *rpcProbeNode {
	t.Helper()
	var cfg raft.Configuration
	for _, n := range nodes {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(n.id), Address: n.trans.LocalAddr()})
	}
	for _, n := range nodes {
		if err := n.r.BootstrapCluster(cfg).Error(); err != nil {
			t.Fatal(err)
		}
	}
	var leader *rpcProbeNode
	rpcProbeEventually(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	// The barrier commits the leader's first entries, so LastIndex and
	// CurrentTerm stay put until something else happens.
	if err := leader.r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	last := leader.r.LastIndex()
	rpcProbeEventually(t, "followers to catch up", func() bool {
		for _, n := range nodes {
			if n.r.LastIndex() != last {
				return false
			}
		}
		return true
	})
	return leader
}

// rpcProbeEventually polls cond every few milliseconds for up to 10s.
func rpcProbeEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func rpcProbe(t *testing.T, addr string) RaftAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	return ProbeRaftRPC(ctx, addr)
}

func rpcProbeRefused(t *testing.T, a RaftAnswer) {
	t.Helper()
	if a.Answered || a.Error == "" {
		t.Fatalf("want no answer and an error, got %+v", a)
	}
	if a.ID != "" || a.Term != 0 || a.Granted || a.LastIndexKnown || a.LastIndex != 0 {
		t.Fatalf("an unanswered probe carries facts: %+v", a)
	}
	t.Logf("error: %s", a.Error)
}

// rpcProbeState is what a probe must leave alone.
type rpcProbeState struct {
	state  raft.RaftState
	term   uint64
	last   uint64
	leader raft.ServerID
}

func rpcProbeStateOf(n *rpcProbeNode) rpcProbeState {
	_, leader := n.r.LeaderWithID()
	return rpcProbeState{n.r.State(), n.r.CurrentTerm(), n.r.LastIndex(), leader}
}

func rpcProbeUnchanged(t *testing.T, n *rpcProbeNode, before rpcProbeState) {
	t.Helper()
	if after := rpcProbeStateOf(n); after != before {
		t.Fatalf("%s changed: before %+v, after %+v", n.id, before, after)
	}
}

// rpcProbeGarbageListener writes payload to every connection and closes it.
func rpcProbeGarbageListener(t *testing.T, payload string) string {
	t.Helper()
	return closingListener(t, payload)
}

// rpcProbeRefusingServer is a raft transport whose every RPC is answered
// with err, like a fenced admitd node's.
func rpcProbeRefusingServer(t *testing.T, err error) string {
	t.Helper()
	trans, terr := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, time.Second, hclog.NewNullLogger())
	if terr != nil {
		t.Fatal(terr)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case rpc := <-trans.Consumer():
				rpc.Respond(nil, err)
			case <-done:
				return
			}
		}
	})
	t.Cleanup(func() { close(done); wg.Wait(); trans.Close() })
	return string(trans.LocalAddr())
}

func TestRaftRPCProbeFreshNode(t *testing.T) {
	n := newRPCProbeNode(t, "fresh1")
	before := rpcProbeStateOf(n)
	// t.Context has no deadline: the probe's own default bounds it.
	a := ProbeRaftRPC(t.Context(), n.addr())
	if !a.Answered || a.Error != "" {
		t.Fatalf("want an answer, got %+v", a)
	}
	if a.ID != n.id || a.Term != 0 || !a.Granted || a.LastIndexKnown || a.LastIndex != 0 {
		t.Fatalf("want a fresh node's answer, got %+v", a)
	}
	if a.RTTMS <= 0 {
		t.Fatalf("no round trip recorded: %+v", a)
	}
	rpcProbeUnchanged(t, n, before)
	if before.term != 0 || before.last != 0 || before.leader != "" {
		t.Fatalf("node was not fresh: %+v", before)
	}
}

func TestRaftRPCProbeBootstrappedLeader(t *testing.T) {
	n := newRPCProbeNode(t, "solo1")
	rpcProbeCluster(t, n)
	before := rpcProbeStateOf(n)
	a := rpcProbe(t, n.addr())
	if !a.Answered || a.Error != "" {
		t.Fatalf("want an answer, got %+v", a)
	}
	if a.ID != n.id || a.Term == 0 || a.Granted || !a.LastIndexKnown || a.LastIndex < 1 {
		t.Fatalf("want a refusal with a term and last index, got %+v", a)
	}
	if a.Term != before.term || a.LastIndex != before.last {
		t.Fatalf("answer %+v does not match the node's state %+v", a, before)
	}
	rpcProbeUnchanged(t, n, before)
	if before.state != raft.Leader {
		t.Fatalf("node was not leading: %+v", before)
	}
}

func TestRaftRPCProbeClusterFollower(t *testing.T) {
	n1, n2 := newRPCProbeNode(t, "pair1"), newRPCProbeNode(t, "pair2")
	leader := rpcProbeCluster(t, n1, n2)
	follower := n1
	if leader == n1 {
		follower = n2
	}
	leaderBefore, followerBefore := rpcProbeStateOf(leader), rpcProbeStateOf(follower)
	a := rpcProbe(t, follower.addr())
	if !a.Answered || a.Error != "" {
		t.Fatalf("want an answer, got %+v", a)
	}
	if a.ID != follower.id || a.Term != leaderBefore.term || a.Granted || !a.LastIndexKnown || a.LastIndex != followerBefore.last {
		t.Fatalf("want the follower's refusal in term %d at index %d, got %+v", leaderBefore.term, followerBefore.last, a)
	}
	rpcProbeUnchanged(t, leader, leaderBefore)
	rpcProbeUnchanged(t, follower, followerBefore)
	if leaderBefore.state != raft.Leader || followerBefore.leader != raft.ServerID(leader.id) {
		t.Fatalf("cluster was not settled: leader %+v, follower %+v", leaderBefore, followerBefore)
	}
}

func TestRaftRPCProbeStoppedNode(t *testing.T) {
	n := newRPCProbeNode(t, "stopped1")
	addr := n.addr()
	n.stop()
	rpcProbeRefused(t, rpcProbe(t, addr))
}

func TestRaftRPCProbeSilentListener(t *testing.T) {
	addr := silentListener(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	a := ProbeRaftRPC(ctx, addr)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("probe took %s under a 300ms deadline", took)
	}
	rpcProbeRefused(t, a)
}

func TestRaftRPCProbeGarbage(t *testing.T) {
	payloads := map[string]string{
		"invalid msgpack": "\xc1\xc1\xc1\xc1",
		"http":            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
		"empty answer":    "\xa0\xc0", // "" then nil: decodes, says nothing
		"nothing":         "",
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			rpcProbeRefused(t, rpcProbe(t, rpcProbeGarbageListener(t, payload)))
		})
	}
}

func TestRaftRPCProbeRemoteError(t *testing.T) {
	msg := "this node has not been admitted; raft RPCs are refused"
	a := rpcProbe(t, rpcProbeRefusingServer(t, errors.New(msg)))
	rpcProbeRefused(t, a)
	if !strings.Contains(a.Error, msg) {
		t.Fatalf("want the remote error in %q", a.Error)
	}
}

func TestRaftRPCProbeInvalidAddress(t *testing.T) {
	a := rpcProbe(t, "nohostport")
	rpcProbeRefused(t, a)
	if !strings.Contains(a.Error, "raft_addr") {
		t.Fatalf("want a raft_addr error, got %q", a.Error)
	}
}

func TestRaftRPCProbeContextDone(t *testing.T) {
	n := newRPCProbeNode(t, "fresh2")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rpcProbeRefused(t, ProbeRaftRPC(ctx, n.addr()))
}
