package raftglue

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

func applyCmd(t *testing.T, f *fsm, index uint64, c command) any {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
}

func TestFSMCommands(t *testing.T) {
	f := newFSM()
	applyCmd(t, f, 1, command{Op: opSetClusterID, ClusterID: "a"})
	applyCmd(t, f, 2, command{Op: opSetClusterID, ClusterID: "b"})
	if f.clusterID() != "a" {
		t.Fatalf("cluster id %q, want the first one", f.clusterID())
	}
	applyCmd(t, f, 3, command{Op: opRegister, ID: "n2", APIURL: "u2"})
	applyCmd(t, f, 4, command{Op: opTombstone, ID: "n2"})
	if _, ok := f.members()["n2"]; ok || len(f.tombstones()) != 1 {
		t.Fatalf("members %v tombstones %v after tombstone", f.members(), f.tombstones())
	}
	applyCmd(t, f, 5, command{Op: opClearTombstone, ID: "n2"})
	if len(f.tombstones()) != 0 {
		t.Fatal("tombstone not cleared")
	}
	if err, _ := applyCmd(t, f, 6, command{Op: "bogus"}).(error); err == nil {
		t.Fatal("unknown op accepted")
	}
	if err, _ := f.Apply(&raft.Log{Index: 7, Data: []byte("{")}).(error); err == nil {
		t.Fatal("bad json accepted")
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRoundTrip(t *testing.T) {
	f := newFSM()
	applyCmd(t, f, 1, command{Op: opSetClusterID, ClusterID: "c"})
	applyCmd(t, f, 2, command{Op: opRegister, ID: "n1", APIURL: "u1"})
	applyCmd(t, f, 4, command{Op: opTombstone, ID: "gone"})
	servers := []raft.Server{{Suffrage: raft.Voter, ID: "n1", Address: "a1"}}
	f.StoreConfiguration(5, raft.Configuration{Servers: servers})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	idx, got := g.configuration()
	if g.clusterID() != "c" || g.members()["n1"].APIURL != "u1" ||
		len(g.tombstones()) != 1 || idx != 5 || len(got) != 1 || got[0] != servers[0] {
		t.Fatalf("restored state %+v", g.st)
	}
	// A snapshot with null maps must still leave a usable FSM.
	if err := g.Restore(io.NopCloser(bytes.NewBufferString(`{"cluster_id":"x"}`))); err != nil {
		t.Fatal(err)
	}
	applyCmd(t, g, 6, command{Op: opTombstone, ID: "x"})
	if len(g.tombstones()) != 1 {
		t.Fatal("FSM unusable after restoring null maps")
	}
	if err := g.Restore(io.NopCloser(bytes.NewBufferString(`nope`))); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}

// raft v1.8.0's GetConfiguration().Index() is always 0, and 0 as prevIndex
// disables raft's check: ClusterConfig must never report it.
func TestClusterConfigIndexNonZero(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if f.Index() != 0 {
		t.Logf("raft now reports configuration index %d; committedConfig's workaround may be simplified", f.Index())
	}
	if idx := mustConfig(t, n).Index; idx == 0 {
		t.Fatal("ClusterConfig reported index 0")
	}
}

func TestDataDirLocked(t *testing.T) {
	cfg := testConfig(t, "n1")
	openNode(t, cfg)
	if n, err := Open(cfg); !errors.Is(err, ErrDataDirInUse) {
		if n != nil {
			_ = n.Shutdown()
		}
		t.Fatalf("second Open on the same dir: %v, want ErrDataDirInUse", err)
	}
}
