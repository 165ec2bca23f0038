package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lostLogLine is the ERROR a member logs when it starts on a data dir
// whose raft log is gone although it had one.
const lostLogLine = "this node's raft log is gone or older than its admission; it stays fenced"

// An operator deletes only the wal/ of a stopped follower. Its data dir
// still says it was admitted, but the log that admission was for is gone:
// restarted at its old address it stays fenced, is not re-synced as the
// old voter (its term and vote record went with the wal), and the leader
// counts it unhealthy.
func TestOperatorFaultWALDeleted(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	victim := others(nodes, leader)[0]
	waitFSM(t, victim, leader)

	if code := victim.stop(t); code != 0 {
		t.Fatalf("%s exit %d after SIGTERM, want 0", victim.id, code)
	}
	if err := os.RemoveAll(filepath.Join(victim.dataDir, "wal")); err != nil {
		t.Fatal(err)
	}
	again := restart(t, victim, false, "")
	waitUp(t, again)
	logContains(t, again, lostLogLine)

	deadline := time.Now().Add(6 * time.Second) // several heartbeats and append attempts
	for time.Now().Before(deadline) {
		if s := mustState(t, again); s.Initialized || s.ClusterID != "" || s.LastIndex != 0 || s.Term != 0 {
			t.Fatalf("a member whose wal was deleted was re-synced without admission: %+v", s)
		}
		c := mustCluster(t, leader)
		if len(c.voters()) != 3 {
			t.Fatalf("voters %v, want all 3 still configured", c.voters())
		}
		for _, s := range c.Servers {
			if s.ID == victim.id && s.Healthy {
				t.Fatalf("the leader counts %s healthy: %+v", victim.id, c.Servers)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitCluster(t, leader, 2, func(c cluster) bool { return c.healthyVoters() == 2 })
	for _, line := range strings.Split(again.log(), "\n") {
		if strings.Contains(line, lostLogLine) {
			t.Logf("%s logged: %s", again.id, line)
		}
	}
	if k := strings.Count(again.log(), lostLogLine); k != 1 {
		t.Errorf("the lost-log error is logged %d times, want once", k)
	}
}

// A flipped byte in a wal segment: `admitd serve` exits non-zero at once
// with one line naming the segment file, not a panic.
func TestOperatorFaultCorruptSegment(t *testing.T) {
	t.Parallel()
	n := bootstrapNode(t, opts{id: "n1"})
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	segs, err := filepath.Glob(filepath.Join(n.dataDir, "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	seg := segs[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// The bootstrap configuration entry, the first one, names the raft
	// address; batches committed after it are intact.
	i := bytes.Index(b, []byte(n.raftAddr))
	if i < 0 {
		t.Fatalf("the raft address %s is not in %s", n.raftAddr, seg)
	}
	b[i+len(n.raftAddr)-1] ^= 0x01
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	again := restart(t, n, false, "")
	if code := waitExit(t, again, waitTimeout); code == 0 {
		t.Fatal("admitd serve exited 0 on a corrupt wal segment")
	}
	out := again.log()
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
		t.Fatalf("admitd serve panicked on a corrupt segment:\n%s", out)
	}
	var naming []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, seg) {
			naming = append(naming, line)
		}
	}
	if len(naming) != 1 || !strings.HasPrefix(naming[0], "admitd: ") || !strings.Contains(naming[0], "wipe the data directory") {
		t.Fatalf("want one error line naming %s and what to do; got %q in:\n%s", seg, naming, out)
	}
	t.Logf("admitd serve said: %s", naming[0])
}
