package raftglue

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// restartAfter shuts n down, runs change on its data dir, and opens it
// again at the same address.
func restartAfter(t *testing.T, n *Node, change func(dir string)) (*Node, error) {
	t.Helper()
	if err := n.Shutdown(); err != nil {
		t.Fatalf("shutdown %s: %v", n.ID(), err)
	}
	if change != nil {
		change(n.cfg.DataDir)
	}
	cfg := n.cfg
	cfg.FSM = newKVFSM() // a restart starts from an empty state, as a process would
	cfg.RaftAddr = n.Addr()
	again, err := Open(cfg)
	if err == nil {
		t.Cleanup(func() { _ = again.Shutdown() })
		track(t, again)
	}
	return again, err
}

func mustRestartAfter(t *testing.T, n *Node, change func(dir string)) *Node {
	t.Helper()
	again, err := restartAfter(t, n, change)
	if err != nil {
		t.Fatalf("reopen %s: %v", n.ID(), err)
	}
	return again
}

func removeWAL(t *testing.T) func(string) {
	return func(dir string) {
		if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
			t.Fatal(err)
		}
	}
}

func removeFile(t *testing.T, name string) func(string) {
	return func(dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// admitFenced opens a fenced node, opens its fence as the API would on
// the leader's notice, and adds it as a voter.
func admitFenced(t *testing.T, leader *Node, id string) *Node {
	t.Helper()
	n := openNode(t, fencedConfig(t, id))
	note := fmt.Sprintf(`{"cluster_id": %q, "leader_id": %q, "decision_id": "d-%s"}`, leader.ClusterID(), leader.ID(), id)
	if err := n.OpenFence([]byte(note)); err != nil {
		t.Fatal(err)
	}
	joinVoter(t, leader, n)
	return n
}

func readRecord(t *testing.T, n *Node) admissionRecord {
	t.Helper()
	var rec admissionRecord
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, admittedFile))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		t.Fatalf("admission record of %s: %v", n.ID(), err)
	}
	return rec
}

// fencedCluster is three fenced voters: n1 bootstrapped, n2 and n3
// admitted; it returns them once n2's admission record is synced.
func fencedCluster(t *testing.T) (leader, n2, n3 *Node) {
	t.Helper()
	leader = bootstrapNode(t, fencedConfig(t, "n1"))
	n3 = admitFenced(t, leader, "n3")
	n2 = admitFenced(t, leader, "n2")
	eventually(t, "n2 has the log", func() bool {
		return n2.ClusterID() == leader.ClusterID() && n2.LastIndex() >= leader.LastIndex()
	})
	eventually(t, "n2's admission record synced", func() bool {
		rec := readRecord(t, n2)
		return rec.Synced && rec.Index > 0 && rec.ClusterID == leader.ClusterID()
	})
	return leader, n2, n3
}

// staysFenced checks, over several heartbeats, that n refuses the
// leader's log while the leader keeps committing without it. The two
// other voters may elect either of them meanwhile (n, fenced, has no say):
// the puts follow the leader (putOnLeader), and it returns the node that
// leads at the end.
func staysFenced(t *testing.T, leader, n *Node) *Node {
	t.Helper()
	if !n.Fenced() || !errors.Is(n.LostLog(), ErrLostLog) {
		t.Fatalf("%s: fenced %v, lost log %v; want fenced for a lost log", n.ID(), n.Fenced(), n.LostLog())
	}
	for i := range 5 {
		// Fails the test if the two other voters stop committing.
		leader = putOnLeader(t, leader, fmt.Sprint("after-wipe-", i), "v")
		time.Sleep(100 * time.Millisecond) // heartbeats and append attempts
	}
	if n.LastIndex() != 0 || n.Initialized() || n.ClusterID() != "" || leader.LastIndex() == 0 {
		t.Fatalf("%s re-synced as the old voter: last index %d (leader %d), initialized %v, cluster %q",
			n.ID(), n.LastIndex(), leader.LastIndex(), n.Initialized(), n.ClusterID())
	}
	if !n.Fenced() {
		t.Fatalf("%s unfenced", n.ID())
	}
	return leader
}

// A voter whose wal/ alone was deleted does not rejoin as the old voter:
// its admission record says it had a log, so the fence stays closed; with
// the wal intact the same restart is an ordinary one.
func TestWipeWALKeepsFence(t *testing.T) {
	leader, n2, _ := fencedCluster(t)

	n2 = mustRestartAfter(t, n2, nil)
	if n2.Fenced() || n2.LostLog() != nil {
		t.Fatalf("wal intact: fenced %v, lost %v; want an ordinary restart", n2.Fenced(), n2.LostLog())
	}
	leader = putOnLeader(t, leader, "intact", "v")
	eventually(t, "n2 catching up after an ordinary restart", func() bool {
		v, _ := get(n2, "intact")
		return v == "v" && n2.LastIndex() >= leader.LastIndex()
	})

	// The clean shutdown recorded last-seen.json too; first both records.
	n2 = mustRestartAfter(t, n2, removeWAL(t))
	leader = staysFenced(t, leader, n2)
	if err := n2.Bootstrap(testCtx(t)); !errors.Is(err, ErrLostLog) {
		t.Fatalf("bootstrap of a lost member: %v, want ErrLostLog", err)
	}

	// The admission record alone (as after a crash) keeps it fenced too.
	n2 = mustRestartAfter(t, n2, func(dir string) {
		_ = os.Remove(filepath.Join(dir, lastSeenFile))
		removeWAL(t)(dir)
	})
	staysFenced(t, leader, n2)

	// A new admission (after the operator removed the member) opens it.
	if err := n2.OpenFence([]byte(`{"decision_id": "again"}`)); err != nil {
		t.Fatal(err)
	}
	if n2.Fenced() || n2.LostLog() != nil {
		t.Fatalf("after a new admission: fenced %v, lost %v", n2.Fenced(), n2.LostLog())
	}
}

// A record made before the log arrived (a crash between the admission and
// the log) still opens the fence.
func TestWipeAdmissionBeforeLogOpens(t *testing.T) {
	n := openNode(t, fencedConfig(t, "n2"))
	if err := n.OpenFence([]byte(`{"decision_id": "d1"}`)); err != nil {
		t.Fatal(err)
	}
	again := mustRestartAfter(t, n, removeWAL(t))
	if again.Fenced() || again.LostLog() != nil {
		t.Fatalf("fenced %v, lost %v; want the admission to hold", again.Fenced(), again.LostLog())
	}
	if rec := readRecord(t, again); rec.Synced {
		t.Fatalf("record %+v synced without a log", rec)
	}
}

// A bootstrapped node (no admission record) whose wal is deleted after a
// clean shutdown stays fenced too, and says why.
func TestWipeWALOfBootstrappedNode(t *testing.T) {
	n := bootstrapNode(t, fencedConfig(t, "n1"))
	again := mustRestartAfter(t, n, removeWAL(t))
	if !again.Fenced() || !errors.Is(again.LostLog(), ErrLostLog) {
		t.Fatalf("fenced %v, lost %v", again.Fenced(), again.LostLog())
	}
	// Without a fence to hold it, it does not start.
	cfg := again.cfg
	cfg.Fence, cfg.RaftAddr = false, again.Addr()
	if err := again.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrLostLog) {
		t.Fatalf("unfenced open of a lost log: %v, want ErrLostLog", err)
	}
}

// A log younger than the admission it was made for (wal replaced by an
// older copy, here: its tail cut) with the vote record in place is
// refused: held behind the fence it would still campaign with a rolled
// back vote record.
func TestWipeLogOlderThanAdmission(t *testing.T) {
	leader, n2, _ := fencedCluster(t)
	rec := readRecord(t, n2)
	_, err := restartAfter(t, n2, func(dir string) {
		_ = os.Remove(filepath.Join(dir, lastSeenFile)) // the record alone
		truncateTail(t, filepath.Join(dir, "wal"), 1)
	})
	if !errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), admittedFile) {
		t.Fatalf("reopen with a log ending before index %d: %v, want ErrDamagedState naming %s", rec.Index, err, admittedFile)
	}
	_ = leader
}

// truncateTail cuts the wal in walDir back to keep entries, as an older
// copy of it would be.
func truncateTail(t *testing.T, walDir string, keep uint64) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	w, err := raftwal.Open(walDir, raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last, err := w.LastIndex()
	if err != nil || last <= keep {
		t.Fatalf("wal last index %d (%v), want more than %d", last, err, keep)
	}
	if err := w.DeleteRange(keep+1, last); err != nil {
		t.Fatal(err)
	}
}
