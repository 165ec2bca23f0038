package raftglue

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// Member is what the cluster records about a server besides raft's own view.
type Member struct {
	APIURL string `json:"api_url"`
}

// Stage records a non-voter admitted in stage, until it is promoted or
// removed, so any leader can carry on watching it.
type Stage struct {
	AdmissionID string `json:"admission_id"`
	RaftAddr    string `json:"raft_addr"`
	APIURL      string `json:"api_url"`
	// StagedAtMS is the admitting leader's clock, Unix milliseconds.
	StagedAtMS int64 `json:"staged_at_ms"`
	// Demoted marks a voter demoted by a granted removal-phase decision:
	// a member with a vote history, never removed for missing a deadline.
	Demoted bool `json:"demoted,omitempty"`
}

// FSM command ops.
const (
	opSetClusterID   = "set_cluster_id"
	opRegister       = "register"
	opTombstone      = "tombstone"
	opClearTombstone = "clear_tombstone"
	opUnstage        = "unstage"
	opSetURL         = "set_url"
)

// command is one FSM log entry, JSON encoded.
type command struct {
	Op        string `json:"op"`
	ClusterID string `json:"cluster_id,omitempty"`
	ID        string `json:"id,omitempty"`
	APIURL    string `json:"api_url,omitempty"`
	// Stage, on a register, marks the member as staged; a register
	// without it (a promotion) ends the stage.
	Stage *Stage `json:"stage,omitempty"`
}

// fsmState is the whole replicated state; a snapshot is its JSON.
type fsmState struct {
	ClusterID  string            `json:"cluster_id"`
	Members    map[string]Member `json:"members"`
	Tombstones map[string]bool   `json:"tombstones"`
	Staged     map[string]Stage  `json:"staged"`
	// ConfigIndex and Config are the last committed raft configuration, fed
	// by StoreConfiguration: raft v1.8.0's GetConfiguration().Index() is 0.
	ConfigIndex uint64        `json:"config_index"`
	Config      []raft.Server `json:"config"`
}

func newState() fsmState {
	return fsmState{
		Members:    map[string]Member{},
		Tombstones: map[string]bool{},
		Staged:     map[string]Stage{},
	}
}

// fsm is admitd's replicated state: the cluster id, members' metadata,
// tombstones, stages and the committed configuration. FSM wraps it beside
// the host's own.
type fsm struct {
	mu sync.RWMutex
	st fsmState
}

var _ raft.ConfigurationStore = (*fsm)(nil)

func newFSM() *fsm { return &fsm{st: newState()} }

// Apply returns nil or an error; raft hands it back via ApplyFuture.Response.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("raftglue: bad command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.apply(c)
}

func (s *fsmState) apply(c command) error {
	switch c.Op {
	case opSetClusterID:
		if s.ClusterID == "" { // set once; later sets are ignored
			s.ClusterID = c.ClusterID
		}
	case opRegister:
		s.Members[c.ID] = Member{APIURL: c.APIURL}
		if c.Stage != nil {
			s.Staged[c.ID] = *c.Stage
		} else {
			delete(s.Staged, c.ID)
		}
	case opSetURL:
		s.Members[c.ID] = Member{APIURL: c.APIURL}
	case opTombstone:
		delete(s.Members, c.ID)
		delete(s.Staged, c.ID)
		s.Tombstones[c.ID] = true
	case opUnstage:
		delete(s.Members, c.ID)
		delete(s.Staged, c.ID)
	case opClearTombstone:
		delete(s.Tombstones, c.ID)
	default:
		return fmt.Errorf("raftglue: unknown command %q", c.Op)
	}
	return nil
}

// StoreConfiguration is called by raft for every committed configuration entry.
func (f *fsm) StoreConfiguration(index uint64, c raft.Configuration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.ConfigIndex = index
	f.st.Config = slices.Clone(c.Servers)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := json.Marshal(f.st)
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(data), nil
}

// reset empties the state, for a snapshot that carried none of it.
func (f *fsm) reset() {
	f.mu.Lock()
	f.st = newState()
	f.mu.Unlock()
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st := newState()
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("raftglue: restore snapshot: %w", err)
	}
	st.fillNil()
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// fillNil keeps maps usable after decoding a snapshot that had them null.
func (s *fsmState) fillNil() {
	if s.Members == nil {
		s.Members = map[string]Member{}
	}
	if s.Tombstones == nil {
		s.Tombstones = map[string]bool{}
	}
	if s.Staged == nil {
		s.Staged = map[string]Stage{}
	}
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}

// Read accessors; each takes the read lock and returns copies.

func (f *fsm) clusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.ClusterID
}

func (f *fsm) members() map[string]Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.st.Members)
}

func (f *fsm) tombstones() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Sorted(maps.Keys(f.st.Tombstones))
}

func (f *fsm) staged() map[string]Stage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.st.Staged)
}

func (f *fsm) configuration() (uint64, []raft.Server) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.ConfigIndex, slices.Clone(f.st.Config)
}
