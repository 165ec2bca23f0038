package raftglue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// What Open checks in the data directory before it hands it to raft, so
// that local damage ends in one clear error instead of a panic (in a
// restart loop) or a node that rejoins with less than it had:
//
//   - every raft-wal segment: each committed batch against its CRC
//     (verifyWAL), where raft-wal itself only checks the last one;
//   - every snapshot's meta.json (checkSnapshots), which raft would skip;
//   - that the log and the newest snapshot leave no gap (raft panics);
//   - that the vote record (CurrentTerm) is not gone while snapshots
//     remain, and neither it nor the log ends below what this node had
//     seen at its last clean shutdown (lastSeenFile);
//   - the admission record (fence.go), for a log younger than the
//     admission it was made for.
//
// A panic from raftwal.Open or raft.NewRaft is recovered into an error too.

// ErrDamagedState means Open found the data directory damaged or older
// than what this node had already done. The error names the file and what
// to do; the node did not start.
var ErrDamagedState = errors.New("raftglue: damaged raft state")

// ErrLostLog means the node was started on a data directory whose raft log
// is gone although an admission or a clean shutdown recorded one: it is
// held behind the fence (Fence) or, without a fence, refused.
var ErrLostLog = errors.New("raftglue: this node's raft log is gone or older than its admission")

// remedy is what an operator does about damaged state: the node is a new
// one now, and comes back through admission.
func remedy(id, dataDir string) string {
	return fmt.Sprintf("remove the member from its cluster (admitd remove --server URL --id %s), wipe the data directory %s, "+
		"clear the id's tombstone (admitd clear-tombstone --server URL --id %s), then admit the node again", id, dataDir, id)
}

func (n *Node) damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrDamagedState, fmt.Sprintf(format, args...), remedy(n.cfg.ID, n.cfg.DataDir))
}

// lastSeenFile records, at each clean shutdown, the commit index and term
// this node had reached. Both only grow: a committed entry is never
// truncated from the log of a node that had it (a snapshot replaces it at a
// higher index), and raft persists a term before acting in it. A log or a
// vote record below them at the next start lost what this node had
// acknowledged to the cluster, which may have counted it in a quorum.
const lastSeenFile = "last-seen.json"

type lastSeen struct {
	CommitIndex uint64 `json:"commit_index"`
	Term        uint64 `json:"term"`
	LastIndex   uint64 `json:"last_index"`
	ClusterID   string `json:"cluster_id,omitempty"`
}

// readLastSeen returns nil when no clean shutdown was recorded.
func readLastSeen(dir string) (*lastSeen, error) {
	path := filepath.Join(dir, lastSeenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftglue: %w", err)
	}
	var ls lastSeen
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("%w: %s is unreadable: %v", ErrDamagedState, path, err)
	}
	return &ls, nil
}

// recordLastSeen writes lastSeenFile after raft has shut down; a node that
// never saw a commit leaves any earlier record alone.
func (n *Node) recordLastSeen() {
	ls := lastSeen{CommitIndex: n.raft.CommitIndex(), Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(), ClusterID: n.ClusterID()}
	if ls.CommitIndex == 0 {
		return
	}
	b, _ := json.Marshal(ls)
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, lastSeenFile), b); err != nil {
		n.cfg.Logger.Warn("could not record the commit index seen at shutdown", "error", err)
	}
}

// writeFileAtomic replaces path with b: a temporary file, synced, renamed.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// snapshotInfo is what checkSnapshots read from the snapshot directories.
type snapshotInfo struct {
	dir    string // <data-dir>/snapshots
	count  int    // readable snapshots
	newest uint64 // highest index among them, 0 with none
}

// checkSnapshots reads every snapshot's meta.json as raft's file store
// does. Raft silently skips one it cannot read, then restores an older
// snapshot or none, and panics on the log it compacted; here it is an
// error that names the file.
func (n *Node) checkSnapshots() (snapshotInfo, error) {
	info := snapshotInfo{dir: filepath.Join(n.cfg.DataDir, "snapshots")}
	entries, err := os.ReadDir(info.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return info, nil
	}
	if err != nil {
		return info, fmt.Errorf("raftglue: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") { // .tmp: a snapshot being written
			continue
		}
		path := filepath.Join(info.dir, e.Name(), "meta.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return info, n.damaged("snapshot metadata %s is unreadable: %v", path, err)
		}
		var meta raft.SnapshotMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return info, n.damaged("snapshot metadata %s is corrupt: %v", path, err)
		}
		if meta.Version < raft.SnapshotVersionMin || meta.Version > raft.SnapshotVersionMax || meta.Index == 0 || meta.ID != e.Name() {
			return info, n.damaged("snapshot metadata %s is corrupt: version %d, index %d, id %q", path, meta.Version, meta.Index, meta.ID)
		}
		info.count++
		info.newest = max(info.newest, meta.Index)
	}
	return info, nil
}

// segmentFile is one raft-wal segment file, named
// <base index, %020d>-<segment id, %016x>.wal.
type segmentFile struct {
	path string
	base uint64
	id   uint64
}

func listSegments(walDir string) ([]segmentFile, error) {
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return nil, fmt.Errorf("raftglue: %w", err)
	}
	var segs []segmentFile
	for _, e := range entries {
		var s segmentFile
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "%020d-%016x.wal", &s.base, &s.id); err != nil {
			continue
		}
		s.path = filepath.Join(walDir, e.Name())
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b segmentFile) int { return compareUint(a.id, b.id) })
	return segs, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// segmentFor names the segment file that holds index (best effort: the
// newest segment starting at or below it).
func segmentFor(walDir string, index uint64) string {
	segs, err := listSegments(walDir)
	if err != nil {
		return walDir
	}
	name := walDir
	for _, s := range segs {
		if s.base <= index {
			name = s.path
		}
	}
	return name
}

// verifyWAL checks every segment in walDir (verifySegment).
func (n *Node) verifyWAL(walDir string) error {
	segs, err := listSegments(walDir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := verifySegment(s.path); err != nil {
			return n.damaged("raft log segment %s is corrupt: %v", s.path, err)
		}
	}
	return nil
}

// The raft-wal v0.4.0 segment format: a 32-byte file header, then 8-byte
// aligned frames (type, 3 reserved bytes, then the payload length, or for
// a commit frame the CRC32-Castagnoli of everything since the previous
// commit frame; the first batch's CRC covers the file header).
const (
	segHeaderLen   = 32
	segFrameLen    = 8
	segFrameEntry  = 1
	segFrameIndex  = 2
	segFrameCommit = 3
	segMaxEntry    = 64 * 1024 * 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verifySegment walks a segment's frames the way raft-wal's recovery does
// (to the first zero or undecodable frame header) and checks every commit
// frame's CRC. A batch whose CRC does not match may be a torn write (or
// what a torn write left beyond the data written after it) when nothing
// committed follows it: raft-wal drops it, and a write it had acknowledged
// is caught by lastSeenFile. One followed by a good commit is corruption:
// raft-wal writes batches one after the other from the start, and rewinds
// over a torn one before it writes the next. Raft-wal checks none of this
// for sealed segments and only the last batch of the tail, so a flipped
// byte elsewhere reached raft as a garbage entry or a panic. Not caught: a
// flip in the last batch of a segment (for a sealed one, its index), or
// one in a frame header that ends the walk early.
func verifySegment(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, segHeaderLen)
	if n, err := f.ReadAt(hdr, 0); n < segHeaderLen {
		if errors.Is(err, io.EOF) {
			return nil // nothing committed yet
		}
		return err
	}
	crc := crc32.Checksum(hdr, castagnoli)
	off := int64(segHeaderLen)
	bad := int64(-1)              // start of the first batch whose CRC did not match
	batch, sawIndex := off, false // where this batch starts; whether it holds an index
	var fh [segFrameLen]byte
	var buf []byte
	for {
		if n, _ := f.ReadAt(fh[:], off); n < segFrameLen {
			break
		}
		typ := fh[0]
		if typ == segFrameCommit {
			ok := crc == binary.LittleEndian.Uint32(fh[4:8])
			switch {
			case ok && bad >= 0:
				return fmt.Errorf("the batch at offset %d does not match its checksum, and committed batches follow it", bad)
			case !ok && bad < 0:
				bad = batch
			}
			off += segFrameLen
			if ok && sawIndex {
				break // a sealed segment ends with its index
			}
			crc, batch, sawIndex = 0, off, false
			continue
		}
		if typ != segFrameEntry && typ != segFrameIndex {
			break // zeros (the end), or a torn or corrupt header: raft-wal stops here too
		}
		l := int64(binary.LittleEndian.Uint32(fh[4:8]))
		if l > segMaxEntry {
			break
		}
		size := segFrameLen + l + (segFrameLen-l%segFrameLen)%segFrameLen
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if n, _ := f.ReadAt(buf, off); int64(n) < size {
			break
		}
		crc = crc32.Update(crc, castagnoli, buf)
		sawIndex = sawIndex || typ == segFrameIndex
		off += size
	}
	return nil
}

// logBounds is what Open reads from the log store before raft starts.
type logBounds struct {
	first, last uint64
	term        uint64 // the stable store's CurrentTerm
}

func readLogBounds(wal *raftwal.WAL) (logBounds, error) {
	var b logBounds
	var err error
	if b.first, err = wal.FirstIndex(); err != nil {
		return b, err
	}
	if b.last, err = wal.LastIndex(); err != nil {
		return b, err
	}
	b.term, err = wal.GetUint64([]byte("CurrentTerm"))
	return b, err
}

// checkState refuses state that is damaged, or older than what this node
// had recorded (lastSeenFile, the admission record). It returns a reason,
// "" when none, to hold a node that has no raft state behind its fence:
// one that cannot be refused either (an empty wal is a fresh node, which
// may be admitted again) but must not be taken for the member it was.
func (n *Node) checkState(walDir string, lb logBounds, snaps snapshotInfo, rec *admissionRecord) (string, error) {
	if lb.last > 0 && lb.first > snaps.newest+1 {
		if snaps.newest == 0 {
			return "", n.damaged("the raft log in %s starts at index %d, but no snapshot in %s holds the entries before it", walDir, lb.first, snaps.dir)
		}
		return "", n.damaged("the raft log in %s starts at index %d, but the newest snapshot in %s ends at index %d: the snapshot it was compacted under is missing",
			walDir, lb.first, snaps.dir, snaps.newest)
	}
	if lb.term == 0 && snaps.count > 0 {
		return "", n.damaged("%s holds snapshots, but the raft log and vote record in %s are gone", snaps.dir, walDir)
	}
	seen, err := readLastSeen(n.cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("%w; %s", err, remedy(n.cfg.ID, n.cfg.DataDir))
	}
	if !n.hadState {
		switch {
		case rec != nil && rec.Synced:
			return fmt.Sprintf("%s holds no raft state, but %s records that this node had the log up to index %d of cluster %s",
				walDir, filepath.Join(n.cfg.DataDir, admittedFile), rec.Index, rec.ClusterID), nil
		case seen != nil:
			return fmt.Sprintf("%s holds no raft state, but %s records that this node had seen index %d committed (term %d)",
				walDir, filepath.Join(n.cfg.DataDir, lastSeenFile), seen.CommitIndex, seen.Term), nil
		}
		return "", nil
	}
	last := max(lb.last, snaps.newest)
	if rec != nil && rec.Synced && last < rec.Index {
		return "", n.damaged("the raft log in %s ends at index %d, but %s records that this node had reached index %d after its admission: the log is older than the admission",
			walDir, last, filepath.Join(n.cfg.DataDir, admittedFile), rec.Index)
	}
	if seen != nil && last < seen.CommitIndex {
		return "", n.damaged("the raft log ends at index %d (in %s), but this node had seen index %d committed at its last clean shutdown (%s): it lost entries it had acknowledged",
			last, segmentFor(walDir, lb.last), seen.CommitIndex, filepath.Join(n.cfg.DataDir, lastSeenFile))
	}
	if seen != nil && lb.term < seen.Term {
		return "", n.damaged("the vote record in %s is at term %d, but this node had reached term %d at its last clean shutdown (%s)",
			walDir, lb.term, seen.Term, filepath.Join(n.cfg.DataDir, lastSeenFile))
	}
	return "", nil
}

// recovered turns a panic in raft-wal or raft while opening into an error.
func (n *Node) recovered(what string, p any, walDir string) error {
	msg := fmt.Sprint(p)
	if n.wal != nil {
		if idx, err := n.firstUnreadable(); err != nil {
			return n.damaged("%s panicked (%s): log entry %d in %s is unreadable: %v", what, msg, idx, segmentFor(walDir, idx), err)
		}
	}
	var first, last uint64
	if n.wal != nil {
		first, _ = n.wal.FirstIndex()
		last, _ = n.wal.LastIndex()
	}
	return n.damaged("%s panicked (%s) on the data in %s: the log in %s holds entries %d to %d, and no readable snapshot in %s covers what comes before",
		what, msg, n.cfg.DataDir, walDir, first, last, filepath.Join(n.cfg.DataDir, "snapshots"))
}

// firstUnreadable finds the first log entry raft-wal cannot return.
func (n *Node) firstUnreadable() (uint64, error) {
	first, _ := n.wal.FirstIndex()
	last, _ := n.wal.LastIndex()
	if last == 0 {
		return 0, nil
	}
	var l raft.Log
	for i := max(first, 1); i <= last; i++ {
		if err := n.wal.GetLog(i, &l); err != nil {
			return i, err
		}
		if l.Index != i {
			return i, fmt.Errorf("it decodes as index %d", l.Index)
		}
	}
	return 0, nil
}
