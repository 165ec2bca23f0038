package raftglue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// putN writes n entries k00.. with values value-00.., one batch each.
func putN(t *testing.T, n *Node, from, count int) {
	t.Helper()
	ctx := testCtx(t)
	for i := from; i < from+count; i++ {
		if err := put(n, ctx, fmt.Sprintf("k%02d", i), fmt.Sprintf("value-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// wantDamaged checks that Open failed with ErrDamagedState naming path
// and what to do.
func wantDamaged(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrDamagedState) {
		t.Fatalf("open: %v, want ErrDamagedState", err)
	}
	msg := err.Error()
	t.Logf("open error: %s", msg)
	if !strings.Contains(msg, path) || !strings.Contains(msg, "wipe the data directory") || strings.Contains(msg, "\n") {
		t.Fatalf("open error %q: want one line naming %s and what to do", msg, path)
	}
}

func segments(t *testing.T, dir string) []segmentFile {
	t.Helper()
	segs, err := listSegments(filepath.Join(dir, "wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments in %s: %v %v", dir, segs, err)
	}
	return segs
}

// A flipped byte inside a committed entry, with later batches intact, is
// found by its batch's checksum: Open names the segment, raft never sees
// the entry.
func TestCorruptWALSegmentFlippedByte(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	putN(t, n, 0, 20)
	var seg string
	_, err := restartAfter(t, n, func(dir string) {
		seg = segments(t, dir)[0].path
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("value-05"))
		if i < 0 {
			t.Fatal("value-05 not found in the segment")
		}
		b[i+6] ^= 0x01 // value-05 -> value-15: still decodes, but is not what was written
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	wantDamaged(t, err, seg)
}

// A cut tail (the last batches gone, as a lost write cache or an older copy
// of the wal leaves it) is below the commit index the node recorded at its
// clean shutdown: refused.
func TestCorruptTruncatedTailAfterAcknowledged(t *testing.T) {
	n := bootstrapNode(t, testConfig(t, "n1"))
	putN(t, n, 0, 20)
	_, err := restartAfter(t, n, func(dir string) { truncateTail(t, filepath.Join(dir, "wal"), 10) })
	wantDamaged(t, err, filepath.Join(n.cfg.DataDir, "wal"))
	if !strings.Contains(err.Error(), "acknowledged") {
		t.Fatalf("open error %q does not say the log lost acknowledged entries", err)
	}
}

// Garbage in the newest snapshot's meta.json: raft would skip it and
// restore nothing under a compacted log; Open names the file.
func TestCorruptSnapshotMeta(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.TrailingLogs = 4
	n := bootstrapNode(t, cfg)
	putN(t, n, 0, 20)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	var meta string
	_, err := restartAfter(t, n, func(dir string) {
		metas, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "meta.json"))
		if len(metas) != 1 {
			t.Fatalf("snapshots: %v", metas)
		}
		meta = metas[0]
		if err := os.WriteFile(meta, []byte("\x00garbage{"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	wantDamaged(t, err, meta)
}

// A snapshot missing under a compacted log: the log starts after index 1
// and nothing holds the entries before it. Raft would panic.
func TestCorruptSnapshotMissing(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.TrailingLogs = 4
	n := bootstrapNode(t, cfg)
	putN(t, n, 0, 20)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	_, err := restartAfter(t, n, func(dir string) {
		if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
			t.Fatal(err)
		}
	})
	wantDamaged(t, err, filepath.Join(n.cfg.DataDir, "snapshots"))
}

// The newest snapshot's state fails its checksum; raft falls back to the
// older one, whose entries after it were compacted away, and panics in
// NewRaft reading them. Open recovers that into an error.
func TestCorruptSnapshotStatePanicRecovered(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.TrailingLogs = 4
	n := bootstrapNode(t, cfg)
	putN(t, n, 0, 20)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	putN(t, n, 20, 20)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	_, err := restartAfter(t, n, func(dir string) {
		states, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
		if len(states) != 2 {
			t.Fatalf("snapshots: %v", states)
		}
		newest := states[len(states)-1] // names sort by term, then index
		b, err := os.ReadFile(newest)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", newest, err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(newest, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	wantDamaged(t, err, n.cfg.DataDir)
}

// A healthy data dir passes every check: reopen after entries, a
// snapshot, and more entries.
func TestCorruptNoneOnHealthyDir(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.TrailingLogs, cfg.WALSegmentBytes = 4, 64*1024
	n := bootstrapNode(t, cfg)
	putN(t, n, 0, 30)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1024)
	for i := range 200 { // several segments
		if err := put(n, testCtx(t), fmt.Sprint("big", i), big); err != nil {
			t.Fatal(err)
		}
	}
	if len(segments(t, n.cfg.DataDir)) < 2 {
		t.Fatal("want more than one segment")
	}
	n = mustRestartAfter(t, n, nil)
	eventually(t, "leads again", n.IsLeader)
	eventually(t, "the entries after the snapshot replayed", func() bool { v, _ := get(n, "big199"); return v == big })
}
