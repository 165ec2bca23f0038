package raftglue

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// waitTimeout bounds every wait on an observation in these tests.
const waitTimeout = 10 * time.Second

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
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
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
	return n
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
func startCluster(t *testing.T, size int) []*Node {
	t.Helper()
	leader := bootstrapNode(t, testConfig(t, "n1"))
	nodes := []*Node{leader}
	for i := 2; i <= size; i++ {
		n := openNode(t, testConfig(t, fmt.Sprintf("n%d", i)))
		joinVoter(t, leader, n)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		eventually(t, n.ID()+" knows cluster id", func() bool { return n.ClusterID() == leader.ClusterID() })
	}
	return nodes
}

// joinVoter adds n to leader's cluster at the current configuration index.
func joinVoter(t *testing.T, leader, n *Node) uint64 {
	t.Helper()
	ctx := testCtx(t)
	cc, err := leader.ClusterConfig(ctx)
	if err != nil {
		t.Fatalf("cluster config: %v", err)
	}
	index, err := leader.addVoter(ctx, n.ID(), n.Addr(), n.APIURL(), cc.Index)
	if err != nil {
		t.Fatalf("add %s: %v", n.ID(), err)
	}
	return index
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
