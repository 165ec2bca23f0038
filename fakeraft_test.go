package admitd

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/raftglue"
)

// The fake leader's identity. Nothing listens at its address: the fake
// never dials, and the gate judges the leader healthy without probing it.
const (
	fakeLeaderID   = "n1"
	fakeLeaderAddr = "127.0.0.1:9"
)

// fakeRaft implements raftglue.RaftAPI deterministically, in the spirit of
// raft-autopilot's MockRaft: a configuration and a log, every entry
// committed and applied to the FSM synchronously, in log order, before the
// call that appended it returns. Membership changes check prevIndex against
// the latest configuration index with raft v1.8.0's own rule and error
// text (configuration.go nextConfiguration). Faults are injected with
// raceNextAdds, failNextChange and stepDown.
type fakeRaft struct {
	mu sync.Mutex
	// fsm is what raft would have been given to raft.NewRaft.
	fsm raft.BatchingFSM

	selfID     raft.ServerID
	selfAddr   raft.ServerAddress
	state      raft.RaftState
	leaderID   raft.ServerID
	leaderAddr raft.ServerAddress
	term       uint64

	log         []raft.Log // log[i] has index i+1
	configIndex uint64     // index of the latest configuration entry
	servers     []raft.Server

	observers map[*raft.Observer]struct{}

	// Faults.
	races      int // the next races adds commit a configuration change first; < 0: every add
	raceChange func(servers []raft.Server, n int) []raft.Server
	fault      *changeFault

	// What was asked of it.
	changes  []changeCall
	applies  int
	barriers int
}

// changeFault is what the next membership change does instead of its usual.
type changeFault struct {
	err      error // returned by the change's future
	commit   bool  // the change still commits (before err is returned)
	stepDown bool  // this server stops leading (before err is returned)
}

// changeCall records one membership change as the gate asked for it.
type changeCall struct {
	Kind      string // "add_voter", "add_nonvoter", "remove", "demote"
	ID        string
	Addr      string
	PrevIndex uint64
	Raced     bool   // a configuration change was committed just before it
	Err       error  // what its future answered
	Index     uint64 // the configuration entry's index, on success
}

var _ raftglue.RaftAPI = (*fakeRaft)(nil)

// newFakeRaft is a leader (n1, term 1) whose log starts with one
// configuration entry at index 1 holding itself as the only voter,
// applied to fsm through ApplyBatch as raft applies a bootstrap entry.
func newFakeRaft(t testing.TB, fsm raft.BatchingFSM) *fakeRaft {
	t.Helper()
	f := newFakeRaftEmpty(fsm, fakeLeaderID, fakeLeaderAddr)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.term = 1
	f.commitConfigLocked([]raft.Server{{Suffrage: raft.Voter, ID: f.selfID, Address: f.selfAddr}})
	f.becomeLeaderLocked()
	return f
}

func newFakeRaftEmpty(fsm raft.BatchingFSM, id, addr string) *fakeRaft {
	return &fakeRaft{
		fsm:        fsm,
		selfID:     raft.ServerID(id),
		selfAddr:   raft.ServerAddress(addr),
		state:      raft.Follower,
		observers:  map[*raft.Observer]struct{}{},
		raceChange: addBystander,
	}
}

// newFakeRaftFrom is another server of the same cluster: it replays log (a
// copy of another fake's, see entries) into fsm, as raft replicates and
// applies it, then leads at a term above every entry's. Its own id and
// address need not be in the configuration yet: see commitConfig.
func newFakeRaftFrom(t testing.TB, fsm raft.BatchingFSM, log []raft.Log, id, addr string) *fakeRaft {
	t.Helper()
	f := newFakeRaftEmpty(fsm, id, addr)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = slices.Clone(log)
	var apply []*raft.Log
	for i := range f.log {
		e := &f.log[i]
		if e.Index != uint64(i+1) {
			t.Fatalf("replayed log has index %d at position %d", e.Index, i)
		}
		f.term = max(f.term, e.Term)
		switch e.Type {
		case raft.LogConfiguration:
			f.configIndex = e.Index
			f.servers = raft.DecodeConfiguration(e.Data).Servers
			apply = append(apply, e)
		case raft.LogCommand:
			apply = append(apply, e)
		}
	}
	if len(apply) > 0 {
		f.fsm.ApplyBatch(apply)
	}
	f.term++ // it won an election
	f.becomeLeaderLocked()
	return f
}

// addBystander is the default racing change: another admission added a
// non-voter. Non-voters do not count towards quorum, so the candidate is
// still allowed on fresh facts. Nothing listens at its address.
func addBystander(servers []raft.Server, n int) []raft.Server {
	return append(servers, raft.Server{
		Suffrage: raft.Nonvoter,
		ID:       raft.ServerID(fmt.Sprintf("bystander-%d", n)),
		Address:  raft.ServerAddress(fmt.Sprintf("127.0.0.1:%d", 10+n)),
	})
}

// --- raftglue.RaftAPI ------------------------------------------------------

func (f *fakeRaft) State() raft.RaftState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeRaft) LeaderWithID() (raft.ServerAddress, raft.ServerID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderAddr, f.leaderID
}

// GetConfiguration answers the latest configuration with index 0, as raft
// v1.8.0 does (its configurationsFuture never sets the index).
func (f *fakeRaft) GetConfiguration() raft.ConfigurationFuture {
	f.mu.Lock()
	defer f.mu.Unlock()
	return configFuture{cfg: raft.Configuration{Servers: slices.Clone(f.servers)}}
}

func (f *fakeRaft) AddVoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, _ time.Duration) raft.IndexFuture {
	return f.change("add_voter", id, addr, prevIndex)
}

func (f *fakeRaft) AddNonvoter(id raft.ServerID, addr raft.ServerAddress, prevIndex uint64, _ time.Duration) raft.IndexFuture {
	return f.change("add_nonvoter", id, addr, prevIndex)
}

func (f *fakeRaft) RemoveServer(id raft.ServerID, prevIndex uint64, _ time.Duration) raft.IndexFuture {
	return f.change("remove", id, "", prevIndex)
}

func (f *fakeRaft) DemoteVoter(id raft.ServerID, prevIndex uint64, _ time.Duration) raft.IndexFuture {
	return f.change("demote", id, "", prevIndex)
}

// ApplyLog appends a command and applies it; the future's Response is the FSM's.
func (f *fakeRaft) ApplyLog(l raft.Log, _ time.Duration) raft.ApplyFuture {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.state != raft.Leader {
		return applyFuture{indexFuture: indexFuture{err: raft.ErrNotLeader}}
	}
	e := f.appendLocked(raft.Log{Type: raft.LogCommand, Data: slices.Clone(l.Data), Extensions: slices.Clone(l.Extensions)})
	resp := f.fsm.ApplyBatch([]*raft.Log{e})[0]
	return applyFuture{indexFuture: indexFuture{index: e.Index}, resp: resp}
}

// Barrier appends a barrier entry, which raft never hands to the FSM;
// everything before it is already applied.
func (f *fakeRaft) Barrier(_ time.Duration) raft.Future {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.barriers++
	if f.state != raft.Leader {
		return indexFuture{err: raft.ErrNotLeader}
	}
	f.appendLocked(raft.Log{Type: raft.LogBarrier})
	return indexFuture{}
}

func (f *fakeRaft) LastContact() time.Time { return time.Time{} }

func (f *fakeRaft) Stats() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lastTerm uint64
	if n := len(f.log); n > 0 {
		lastTerm = f.log[n-1].Term
	}
	return map[string]string{
		"state":          f.state.String(),
		"term":           strconv.FormatUint(f.term, 10),
		"last_log_index": strconv.Itoa(len(f.log)),
		"last_log_term":  strconv.FormatUint(lastTerm, 10),
	}
}

func (f *fakeRaft) LastIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.log))
}

func (f *fakeRaft) CurrentTerm() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.term
}

func (f *fakeRaft) RegisterObserver(or *raft.Observer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observers[or] = struct{}{}
}

func (f *fakeRaft) DeregisterObserver(or *raft.Observer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.observers, or)
}

// --- Log and configuration --------------------------------------------------

func (f *fakeRaft) appendLocked(e raft.Log) *raft.Log {
	e.Index = uint64(len(f.log) + 1)
	e.Term = f.term
	e.AppendedAt = time.Now()
	f.log = append(f.log, e)
	return &f.log[len(f.log)-1]
}

// commitConfigLocked appends a configuration entry and applies it to the
// FSM, which records its index (raftglue's wrapper, StoreConfiguration).
func (f *fakeRaft) commitConfigLocked(servers []raft.Server) uint64 {
	servers = slices.Clone(servers)
	e := f.appendLocked(raft.Log{Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: servers})})
	f.configIndex, f.servers = e.Index, servers
	f.fsm.ApplyBatch([]*raft.Log{e})
	return e.Index
}

// commitConfig commits servers as the next configuration, outside any
// gate: another operator's change.
func (f *fakeRaft) commitConfig(servers []raft.Server) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commitConfigLocked(servers)
}

// change is a membership change as raft's appendConfigurationEntry makes
// it, with the injected faults first.
func (f *fakeRaft) change(kind string, id raft.ServerID, addr raft.ServerAddress, prevIndex uint64) raft.IndexFuture {
	f.mu.Lock()
	call := changeCall{Kind: kind, ID: string(id), Addr: string(addr), PrevIndex: prevIndex}
	var emit []any
	defer func() {
		f.changes = append(f.changes, call)
		f.mu.Unlock()
		f.emit(emit...)
	}()
	if f.state != raft.Leader {
		call.Err = raft.ErrNotLeader
		return indexFuture{err: call.Err}
	}
	if kind != "remove" && kind != "demote" && f.races != 0 {
		if f.races > 0 {
			f.races--
		}
		call.Raced = true
		f.commitConfigLocked(f.raceChange(slices.Clone(f.servers), len(f.changes)+1))
	}
	if fault := f.fault; fault != nil {
		f.fault = nil
		if fault.commit {
			if next, err := nextConfig(f.servers, kind, id, addr); err == nil {
				f.commitConfigLocked(next)
			}
		}
		if fault.stepDown {
			emit = f.stepDownLocked("", "")
		}
		call.Err = fault.err
		return indexFuture{err: call.Err}
	}
	if prevIndex > 0 && prevIndex != f.configIndex {
		call.Err = fmt.Errorf("configuration changed since %v (latest is %v)", prevIndex, f.configIndex)
		return indexFuture{err: call.Err}
	}
	next, err := nextConfig(f.servers, kind, id, addr)
	if err != nil {
		call.Err = err
		return indexFuture{err: err}
	}
	call.Index = f.commitConfigLocked(next)
	return indexFuture{index: call.Index}
}

// nextConfig is raft's nextConfiguration for the three changes the gate makes.
func nextConfig(current []raft.Server, kind string, id raft.ServerID, addr raft.ServerAddress) ([]raft.Server, error) {
	servers := slices.Clone(current)
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return s.ID == id })
	switch kind {
	case "add_voter":
		if i < 0 {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: addr})
		} else {
			servers[i] = raft.Server{Suffrage: raft.Voter, ID: id, Address: addr}
		}
	case "add_nonvoter":
		switch {
		case i < 0:
			servers = append(servers, raft.Server{Suffrage: raft.Nonvoter, ID: id, Address: addr})
		case servers[i].Suffrage != raft.Nonvoter:
			servers[i].Address = addr
		default:
			servers[i] = raft.Server{Suffrage: raft.Nonvoter, ID: id, Address: addr}
		}
	case "remove":
		if i >= 0 {
			servers = slices.Delete(servers, i, i+1)
		}
	case "demote":
		if i >= 0 {
			servers[i].Suffrage = raft.Nonvoter
		}
	}
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.Suffrage == raft.Voter }) {
		return nil, fmt.Errorf("need at least one voter in configuration: %v", servers)
	}
	return servers, nil
}

// --- Leadership -------------------------------------------------------------

// stepDown makes this server a follower of leaderID (none if ""), and tells
// the observers as raft does: the state, then the leader.
func (f *fakeRaft) stepDown(leaderID, leaderAddr string) {
	f.mu.Lock()
	emit := f.stepDownLocked(leaderID, leaderAddr)
	f.mu.Unlock()
	f.emit(emit...)
}

func (f *fakeRaft) stepDownLocked(leaderID, leaderAddr string) []any {
	f.state = raft.Follower
	f.leaderID, f.leaderAddr = raft.ServerID(leaderID), raft.ServerAddress(leaderAddr)
	return []any{raft.Follower, raft.LeaderObservation{LeaderAddr: f.leaderAddr, Leader: f.leaderAddr, LeaderID: f.leaderID}}
}

// becomeLeader wins an election: a new term, a no-op entry of that term,
// and the observations raft sends.
func (f *fakeRaft) becomeLeader() {
	f.mu.Lock()
	f.term++
	emit := f.becomeLeaderLocked()
	f.mu.Unlock()
	f.emit(emit...)
}

func (f *fakeRaft) becomeLeaderLocked() []any {
	f.state = raft.Leader
	f.leaderID, f.leaderAddr = f.selfID, f.selfAddr
	f.appendLocked(raft.Log{Type: raft.LogNoop})
	return []any{raft.Leader, raft.LeaderObservation{LeaderAddr: f.leaderAddr, Leader: f.leaderAddr, LeaderID: f.leaderID}}
}

// emit sends each observation to every registered observer whose filter
// takes it, never blocking, as raft's observe does for a non-blocking
// observer (a full channel drops it).
func (f *fakeRaft) emit(data ...any) {
	if len(data) == 0 {
		return
	}
	f.mu.Lock()
	obs := make([]*raft.Observer, 0, len(f.observers))
	for or := range f.observers {
		obs = append(obs, or)
	}
	f.mu.Unlock()
	for _, d := range data {
		for _, or := range obs {
			ch, filter := observerParts(or)
			ob := raft.Observation{Data: d}
			if ch == nil || (filter != nil && !filter(&ob)) {
				continue
			}
			select {
			case ch <- ob:
			default:
			}
		}
	}
}

// observerParts reads a raft.Observer's channel and filter. They are
// unexported and RaftAPI hands observers over as *raft.Observer, so a fake
// outside package raft can reach them only like this.
func observerParts(or *raft.Observer) (chan raft.Observation, raft.FilterFn) {
	v := reflect.ValueOf(or).Elem()
	ch := *(*chan raft.Observation)(unsafe.Pointer(v.FieldByName("channel").UnsafeAddr()))
	filter := *(*raft.FilterFn)(unsafe.Pointer(v.FieldByName("filter").UnsafeAddr()))
	return ch, filter
}

func (f *fakeRaft) observerCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.observers)
}

// --- Faults -----------------------------------------------------------------

// raceNextAdds makes the next n AddVoter/AddNonvoter calls (every one if n
// < 0) find that another configuration change committed just before them,
// so a prevIndex read earlier no longer matches.
func (f *fakeRaft) raceNextAdds(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.races = n
}

// failNextChange makes the next membership change answer err, after
// committing the change anyway (commit) and after this server stopped
// leading (stepDown), as asked.
func (f *fakeRaft) failNextChange(err error, commit, stepDown bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = &changeFault{err: err, commit: commit, stepDown: stepDown}
}

// --- Reading it back ----------------------------------------------------------

func (f *fakeRaft) configuration() (uint64, []raft.Server) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configIndex, slices.Clone(f.servers)
}

// suffrage is id's suffrage in the latest configuration, "" if absent.
func (f *fakeRaft) suffrage(id string) string {
	_, servers := f.configuration()
	for _, s := range servers {
		if string(s.ID) == id {
			return s.Suffrage.String()
		}
	}
	return ""
}

func (f *fakeRaft) changeCalls() []changeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.changes)
}

func (f *fakeRaft) applyCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

// entries is a copy of the log.
func (f *fakeRaft) entries() []raft.Log {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// replicateTo sends the whole log to a real raft server, as this leader's
// replication would: one AppendEntries at this leader's term. The server
// then answers probes with this term and the log's last index, so the
// catch_up collector sees it caught up.
func (f *fakeRaft) replicateTo(t testing.TB, id, addr string) {
	t.Helper()
	f.mu.Lock()
	req := raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(f.selfID), Addr: []byte(f.selfAddr)},
		Term:              f.term,
		LeaderCommitIndex: uint64(len(f.log)),
	}
	for i := range f.log {
		e := f.log[i]
		req.Entries = append(req.Entries, &e)
	}
	f.mu.Unlock()
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 2*time.Second, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	if err := trans.AppendEntries(raft.ServerID(id), raft.ServerAddress(addr), &req, &resp); err != nil {
		t.Fatalf("replicate to %s: %v", id, err)
	}
	if !resp.Success || resp.Term != req.Term {
		t.Fatalf("replicate to %s: refused: %+v", id, resp)
	}
}

// --- Futures ----------------------------------------------------------------

// indexFuture is a raft.Future and raft.IndexFuture that is already done.
type indexFuture struct {
	err   error
	index uint64
}

func (f indexFuture) Error() error  { return f.err }
func (f indexFuture) Index() uint64 { return f.index }

// applyFuture is a done raft.ApplyFuture.
type applyFuture struct {
	indexFuture
	resp any
}

func (f applyFuture) Response() any { return f.resp }

// configFuture is a done raft.ConfigurationFuture.
type configFuture struct {
	indexFuture
	cfg raft.Configuration
}

func (f configFuture) Configuration() raft.Configuration { return f.cfg }

var (
	_ raft.IndexFuture         = indexFuture{}
	_ raft.ApplyFuture         = applyFuture{}
	_ raft.ConfigurationFuture = configFuture{}
)

// --- The fake's own tests -----------------------------------------------------

// The fake keeps raft's rules the gate depends on: prevIndex checked with
// raft's error text (which raftglue maps to ErrConfigChanged), every
// configuration index recorded by the wrapper, commands routed to
// admitd's state with their responses, and observations delivered.
func TestGateFakeRaftFollowsRaft(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	if idx, servers := f.configuration(); idx != 1 || len(servers) != 1 {
		t.Fatalf("bootstrap: index %d servers %v", idx, servers)
	}
	fut := f.AddNonvoter("x", "127.0.0.1:1", 7, 0)
	if err := fut.Error(); err == nil || !strings.Contains(err.Error(), "configuration changed since") {
		t.Fatalf("stale prevIndex: %v", err)
	}
	fut = f.AddNonvoter("x", "127.0.0.1:1", 1, 0)
	if err := fut.Error(); err != nil {
		t.Fatal(err)
	}
	if f.suffrage("x") != "Nonvoter" {
		t.Fatalf("x is %q", f.suffrage("x"))
	}
	if err := f.RemoveServer(fakeLeaderID, fut.Index(), 0).Error(); err == nil {
		t.Fatal("removed the last voter")
	}
	ch := make(chan raft.Observation, 4)
	or := raft.NewObserver(ch, false, func(o *raft.Observation) bool { _, ok := o.Data.(raft.RaftState); return ok })
	f.RegisterObserver(or)
	f.stepDown("n2", "127.0.0.1:2")
	select {
	case o := <-ch:
		if o.Data != raft.Follower {
			t.Fatalf("observed %v", o.Data)
		}
	default:
		t.Fatal("no observation")
	}
	if len(ch) != 0 {
		t.Fatal("the filter let a leader observation through")
	}
	if err := f.ApplyLog(raft.Log{Data: []byte("{}"), Extensions: raftglue.Extension}, 0).Error(); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("a follower applied: %v", err)
	}
}
