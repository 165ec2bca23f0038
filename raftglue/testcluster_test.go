package raftglue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/facts"
)

// waitTimeout bounds every wait on an observation in these tests.
const waitTimeout = 10 * time.Second

// Raft timeouts of the in-process raft servers of these tests; raft
// requires LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout.
//
// testConfig's nodes form clusters of two and three voters. Their timeouts
// are longer than a LAN test needs on an idle machine on purpose: the
// suite runs packages side by side under -race, and on a loaded 2-core
// machine a node's goroutines can go unscheduled for longer than the
// 100 ms they had, so a leader missed its lease and stepped down in the
// middle of a test. Leadership now survives a stall of half a second. The
// price is a bootstrap's or a restart's first election, which waits one to
// two HeartbeatTimeouts.
//
// wrapRaft's servers stay short: each is the single voter of its own
// cluster (in-memory transport, never joined), and a single voter counts
// only itself for its lease, so it cannot lose leadership however long it
// goes unscheduled; longer timeouts would only delay its first election.
const (
	testHeartbeatTimeout   = 500 * time.Millisecond
	testElectionTimeout    = 500 * time.Millisecond
	testLeaderLeaseTimeout = 500 * time.Millisecond
	testCommitTimeout      = 5 * time.Millisecond

	wrapHeartbeatTimeout   = 50 * time.Millisecond
	wrapElectionTimeout    = 50 * time.Millisecond
	wrapLeaderLeaseTimeout = 50 * time.Millisecond
	wrapCommitTimeout      = 5 * time.Millisecond
)

// testConfig is a node config with LAN-test timeouts on a free local port.
// Set RAFTGLUE_TEST_LOG=1 to see raft's logs.
func testConfig(t *testing.T, id string) Config {
	t.Helper()
	logger := hclog.NewNullLogger()
	if os.Getenv("RAFTGLUE_TEST_LOG") != "" {
		logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Debug})
	}
	return Config{
		ID:                 id,
		RaftAddr:           "127.0.0.1:0",
		APIURL:             fmt.Sprintf("http://%s.test", id),
		DataDir:            t.TempDir(),
		Logger:             logger,
		FSM:                newKVFSM(),
		HeartbeatTimeout:   testHeartbeatTimeout,
		ElectionTimeout:    testElectionTimeout,
		LeaderLeaseTimeout: testLeaderLeaseTimeout,
		CommitTimeout:      testCommitTimeout,
		ApplyTimeout:       5 * time.Second,
	}
}

// openNode opens a node and shuts it down at the end of the test.
func openNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	track(t, n)
	return n
}

// opened maps the raft address of each node a test opened (openNode,
// restartAfter) to the node, so that a helper that saw leadership move can
// find the node that leads now.
var opened sync.Map // string -> *Node

func track(t *testing.T, n *Node) {
	opened.Store(n.Addr(), n)
	t.Cleanup(func() { opened.CompareAndDelete(n.Addr(), n) })
}

// leaderNow waits (bounded) until n's cluster has a leader among the nodes
// the test opened, n itself or the one n knows as leader, and returns it.
func leaderNow(t *testing.T, n *Node) *Node {
	t.Helper()
	var leader *Node
	eventually(t, "a leader of "+n.ID()+"'s cluster", func() bool {
		leader = n
		if !n.IsLeader() {
			v, ok := opened.Load(n.LeaderAddr())
			if !ok {
				return false
			}
			leader = v.(*Node)
		}
		return leader.IsLeader()
	})
	return leader
}

// leadershipMoved reports whether err says the node asked was not, or
// stopped being, the leader: this package's errors, or raft's own from a
// raw raft call.
func leadershipMoved(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) ||
		errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost)
}

// onLeader runs op on the leader of n's cluster and returns the node it
// succeeded on. When op fails because leadership moved (leadershipMoved),
// it waits for the next leader and runs op again on it, for up to
// waitTimeout; any other error fails the test. Under load an election can
// come between any two steps of a test; what a test checks is what its
// changes do, not that its leader kept leading. Such an error may come
// after op's change committed, so only an op that is safe to run twice
// goes through here: each caller says why its op is.
func onLeader(t *testing.T, n *Node, what string, op func(leader *Node) error) *Node {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		leader := leaderNow(t, n)
		err := op(leader)
		if err == nil {
			return leader
		}
		if !leadershipMoved(err) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s on %s: %v; asking the next leader", what, leader.ID(), err)
		n = leader
	}
}

// putOnLeader is put on the leader of n's cluster (onLeader), and returns
// that leader. Asking again is safe: writing the same value to the same
// key twice leaves the state as writing it once.
func putOnLeader(t *testing.T, n *Node, key, value string) *Node {
	t.Helper()
	return onLeader(t, n, "put "+key, func(leader *Node) error { return put(leader, testCtx(t), key, value) })
}

// leadAgain makes n the leader again if an election moved leadership off
// it, by a leadership transfer from the node that leads; it returns at once
// if n leads.
func leadAgain(t *testing.T, n *Node) {
	t.Helper()
	eventually(t, n.ID()+" leading again", func() bool {
		if leader := leaderNow(t, n); leader != n {
			_ = leader.raft.LeadershipTransferToServer(raft.ServerID(n.ID()), raft.ServerAddress(n.Addr())).Error()
		}
		return n.IsLeader()
	})
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// bootstrapNode opens and bootstraps a single-node cluster.
func bootstrapNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n := openNode(t, cfg)
	if err := n.Bootstrap(testCtx(t)); err != nil {
		t.Fatalf("bootstrap %s: %v", cfg.ID, err)
	}
	return n
}

// startCluster bootstraps n1 and adds n2..nN as voters through the
// unexported addVoter, each with the configuration index read just before.
// Tests take nodes[0] for the leader: if an election moved leadership
// while the cluster grew, n1 is made the leader again.
func startCluster(t *testing.T, size int) []*Node {
	t.Helper()
	first := bootstrapNode(t, testConfig(t, "n1"))
	nodes, leader := []*Node{first}, first
	for i := 2; i <= size; i++ {
		n := openNode(t, testConfig(t, fmt.Sprintf("n%d", i)))
		leader = joinVoter(t, leader, n)
		nodes = append(nodes, n)
	}
	leadAgain(t, first)
	for _, n := range nodes {
		eventually(t, n.ID()+" knows cluster id", func() bool { return n.ClusterID() == first.ClusterID() })
	}
	return nodes
}

// joinVoter adds n as a voter to leader's cluster at the current
// configuration index and returns the node that leads once it is in. If
// leadership moves, the add is asked again of the next leader (onLeader):
// the lost add may have committed, so a second attempt first reads the
// committed configuration on that leader, stops if n is a voter at its
// address already, and else adds it at that configuration's index, which
// raft refuses if it went stale.
func joinVoter(t *testing.T, leader, n *Node) *Node {
	t.Helper()
	attempt := 0
	return onLeader(t, leader, "add "+n.ID(), func(leader *Node) error {
		ctx := testCtx(t)
		cc, err := leader.ClusterConfig(ctx)
		if err != nil {
			return err
		}
		if attempt++; attempt > 1 && slices.ContainsFunc(cc.Servers, func(s facts.ConfigServer) bool {
			return s.ID == n.ID() && s.Address == n.Addr() && s.Suffrage == facts.Voter
		}) {
			return nil
		}
		_, err = leader.addVoter(ctx, n.ID(), n.Addr(), n.APIURL(), cc.Index)
		return err
	})
}

// eventually polls cond until it holds, failing after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reopen shuts n down and opens a node on the same data dir and address.
func reopen(t *testing.T, n *Node) *Node {
	t.Helper()
	if err := n.Shutdown(); err != nil {
		t.Fatalf("shutdown %s: %v", n.ID(), err)
	}
	cfg := n.cfg
	cfg.FSM = newKVFSM() // a restart starts from an empty state, as a process would
	cfg.RaftAddr = n.Addr()
	return openNode(t, cfg)
}
