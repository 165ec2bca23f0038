package raftglue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// wrapTimeout bounds every raft call and every wait in these tests.
const wrapTimeout = 10 * time.Second

// wrapEntry is one log entry as a host FSM was handed it.
type wrapEntry struct {
	Index   uint64
	Type    raft.LogType
	Data    string // commands only
	Ext     string
	Servers []raft.Server // configuration entries only
}

func wrapEntryOf(l *raft.Log) wrapEntry {
	e := wrapEntry{Index: l.Index, Type: l.Type, Ext: string(l.Extensions)}
	if l.Type == raft.LogConfiguration {
		e.Servers = raft.DecodeConfiguration(l.Data).Servers
	} else {
		e.Data = string(l.Data)
	}
	return e
}

// wrapCall is one call made on a host FSM.
type wrapCall struct {
	Kind    string      // "apply", "batch", "conf", "snapshot", "restore"
	Entries []wrapEntry // apply and conf: one; batch: the batch
	Data    string      // restore: the bytes the host was handed
}

// wrapHost is a recording host FSM. Its state is the data of the commands
// it applied, in order; its snapshot is that list as JSON.
type wrapHost struct {
	mu    sync.Mutex
	calls []wrapCall
	state []string
}

func (h *wrapHost) Apply(l *raft.Log) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, wrapCall{Kind: "apply", Entries: []wrapEntry{wrapEntryOf(l)}})
	return h.applyLocked(l)
}

// applyLocked answers a command with the length of its data.
func (h *wrapHost) applyLocked(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	h.state = append(h.state, string(l.Data))
	return len(l.Data)
}

func (h *wrapHost) Snapshot() (raft.FSMSnapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, wrapCall{Kind: "snapshot"})
	data, err := json.Marshal(h.state)
	return wrapHostSnap(data), err
}

func (h *wrapHost) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, wrapCall{Kind: "restore", Data: string(data)})
	if err != nil {
		return err
	}
	var st []string
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("wrapHost: restore: %w", err)
	}
	h.state = st
	return nil
}

func (h *wrapHost) recorded() []wrapCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *wrapHost) applied() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.state)
}

type wrapHostSnap []byte

func (s wrapHostSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (wrapHostSnap) Release() {}

// wrapConfHost also stores configurations.
type wrapConfHost struct{ *wrapHost }

func (h wrapConfHost) StoreConfiguration(index uint64, c raft.Configuration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, wrapCall{Kind: "conf", Entries: []wrapEntry{{
		Index: index, Type: raft.LogConfiguration, Servers: slices.Clone(c.Servers),
	}}})
}

// wrapBatchHost batches.
type wrapBatchHost struct{ *wrapHost }

func (h wrapBatchHost) ApplyBatch(logs []*raft.Log) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := wrapCall{Kind: "batch"}
	out := make([]any, len(logs))
	for i, l := range logs {
		c.Entries = append(c.Entries, wrapEntryOf(l))
		out[i] = h.applyLocked(l)
	}
	h.calls = append(h.calls, c)
	return out
}

// wrapBatchConfHost batches and stores configurations; raft, batching,
// never calls its StoreConfiguration.
type wrapBatchConfHost struct{ wrapBatchHost }

func (h wrapBatchConfHost) StoreConfiguration(index uint64, c raft.Configuration) {
	wrapConfHost{h.wrapHost}.StoreConfiguration(index, c)
}

var (
	_ raft.ConfigurationStore = wrapConfHost{}
	_ raft.BatchingFSM        = wrapBatchHost{}
	_ raft.BatchingFSM        = wrapBatchConfHost{}
	_ raft.ConfigurationStore = wrapBatchConfHost{}
)

// wrapHostKinds builds each kind of host over a fresh recorder.
var wrapHostKinds = []struct {
	name string
	make func(*wrapHost) raft.FSM
}{
	{"plain", func(h *wrapHost) raft.FSM { return h }},
	{"confstore", func(h *wrapHost) raft.FSM { return wrapConfHost{h} }},
	{"batching", func(h *wrapHost) raft.FSM { return wrapBatchHost{h} }},
	{"batching+confstore", func(h *wrapHost) raft.FSM { return wrapBatchConfHost{wrapBatchHost{h}} }},
}

// wrapRaft starts a raft node on the given stores with LAN-test timeouts;
// its id is its address. Snapshots are only the ones the tests take.
func wrapRaft(t *testing.T, fsm raft.FSM, logs *raft.InmemStore, snaps raft.SnapshotStore, addr raft.ServerAddress) *raft.Raft {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(addr)
	conf.HeartbeatTimeout = wrapHeartbeatTimeout // single voter: see testcluster_test.go
	conf.ElectionTimeout = wrapElectionTimeout
	conf.LeaderLeaseTimeout = wrapLeaderLeaseTimeout
	conf.CommitTimeout = wrapCommitTimeout
	conf.BatchApplyCh = true // so a burst of applies shares raft's batches
	conf.SnapshotThreshold = 1 << 30
	conf.SnapshotInterval = time.Hour
	conf.Logger = hclog.NewNullLogger()
	_, trans := raft.NewInmemTransport(addr)
	r, err := raft.NewRaft(conf, fsm, logs, logs, snaps, trans)
	if err != nil {
		t.Fatalf("raft.NewRaft: %v", err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	return r
}

// wrapSelf is the single voter of a node at addr.
func wrapSelf(addr raft.ServerAddress) raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(addr), Address: addr}
}

// wrapBootstrap bootstraps r alone and waits for it to lead.
func wrapBootstrap(t *testing.T, r *raft.Raft, addr raft.ServerAddress) {
	t.Helper()
	cfg := raft.Configuration{Servers: []raft.Server{wrapSelf(addr)}}
	if err := r.BootstrapCluster(cfg).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	wrapWaitLeader(t, r)
}

func wrapWaitLeader(t *testing.T, r *raft.Raft) {
	t.Helper()
	deadline := time.Now().Add(wrapTimeout)
	for i := 0; r.State() != raft.Leader; i++ {
		if i > 5000 || time.Now().After(deadline) {
			t.Fatalf("no leadership after %v: state %v", wrapTimeout, r.State())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wrapBarrier(t *testing.T, r *raft.Raft) {
	t.Helper()
	if err := r.Barrier(wrapTimeout).Error(); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

// wrapHostCmd submits a host command with optional extensions.
func wrapHostCmd(r *raft.Raft, data, ext string) raft.ApplyFuture {
	l := raft.Log{Data: []byte(data)}
	if ext != "" {
		l.Extensions = []byte(ext)
	}
	return r.ApplyLog(l, wrapTimeout)
}

// wrapOwnCmd submits an admitd command.
func wrapOwnCmd(t *testing.T, r *raft.Raft, c command) raft.ApplyFuture {
	t.Helper()
	l, err := encodeCommand(c)
	if err != nil {
		t.Fatalf("encodeCommand: %v", err)
	}
	return r.ApplyLog(l, wrapTimeout)
}

func wrapWait(t *testing.T, fs ...raft.ApplyFuture) {
	t.Helper()
	for _, f := range fs {
		if err := f.Error(); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}

// wrapTakeSnapshot has r snapshot and returns the snapshot's meta and bytes.
func wrapTakeSnapshot(t *testing.T, r *raft.Raft) (*raft.SnapshotMeta, []byte) {
	t.Helper()
	f := r.Snapshot()
	if err := f.Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		t.Fatalf("open snapshot: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return meta, data
}

// wrapEvent is a host call without indexes. With the wrapper admitd's
// entries sit between the host's in the log, so every later host entry
// has a higher index than in the run without it; what must match is the
// order, kind, type, data, extensions and servers of what the host saw.
// A batch is flattened to its entries: raft's batch boundaries depend on
// timing, not on the wrapper.
type wrapEvent struct {
	Kind    string
	Type    raft.LogType
	Data    string
	Ext     string
	Servers []raft.Server
}

func wrapEvents(calls []wrapCall) []wrapEvent {
	var out []wrapEvent
	for _, c := range calls {
		if len(c.Entries) == 0 {
			out = append(out, wrapEvent{Kind: c.Kind, Data: c.Data})
			continue
		}
		for _, e := range c.Entries {
			out = append(out, wrapEvent{Kind: c.Kind, Type: e.Type, Data: e.Data, Ext: e.Ext, Servers: e.Servers})
		}
	}
	return out
}

// wrapStep is one step of wrapRunScenario: a host command, an admitd
// command, a configuration change or a snapshot.
type wrapStep struct {
	host, ext string   // host command data and extensions
	own       *command // admitd command
	conf      []raft.Server
	snapshot  bool
}

// wrapRun is what wrapRunScenario observed.
type wrapRun struct {
	hostFutures []raft.ApplyFuture // host commands, in order
	hostData    []string
	ownFutures  []raft.ApplyFuture // admitd commands, in order
	confIndexes []uint64           // configuration changes after bootstrap
}

// wrapScenario is the same host workload for every run; admitd's commands
// are only submitted when own is set. ghost is a non-voter that is added
// and removed, for two more configuration entries.
func wrapScenario(self, ghost raft.Server) []wrapStep {
	own := func(c command) wrapStep { return wrapStep{own: &c} }
	steps := []wrapStep{
		{host: "h0"},
		own(command{Op: opSetClusterID, ClusterID: "c1"}),
		{host: "h1-ext", ext: "host.ext"},
		own(command{Op: opRegister, ID: "n1", APIURL: "http://n1"}),
		{host: "h2-not-admitd", ext: "admitd.v2"},
		{conf: []raft.Server{self, ghost}},
		own(command{Op: opRegister, ID: "n2", APIURL: "http://n2"}),
		{host: "h3"},
		{snapshot: true},
		{conf: []raft.Server{self}},
		own(command{Op: "no-such-op"}),
	}
	// A burst submitted without waiting, so raft batches host and admitd
	// entries together.
	for i := range 6 {
		steps = append(steps, wrapStep{host: strings.Repeat("b", i+1)})
		steps = append(steps, own(command{Op: opSetURL, ID: "n1", APIURL: fmt.Sprintf("http://n1/%d", i)}))
	}
	return steps
}

// wrapRunScenario runs the scenario on a bootstrapped leader.
func wrapRunScenario(t *testing.T, r *raft.Raft, steps []wrapStep, own bool) wrapRun {
	t.Helper()
	var run wrapRun
	var pending []raft.ApplyFuture
	flush := func() {
		wrapWait(t, pending...)
		pending = nil
	}
	for _, s := range steps {
		switch {
		case s.host != "":
			f := wrapHostCmd(r, s.host, s.ext)
			run.hostFutures = append(run.hostFutures, f)
			run.hostData = append(run.hostData, s.host)
			pending = append(pending, f)
		case s.own != nil:
			if own {
				f := wrapOwnCmd(t, r, *s.own)
				run.ownFutures = append(run.ownFutures, f)
				pending = append(pending, f)
			}
		case s.conf != nil:
			flush()
			var f raft.IndexFuture
			if len(s.conf) == 2 {
				f = r.AddNonvoter(s.conf[1].ID, s.conf[1].Address, 0, wrapTimeout)
			} else {
				f = r.RemoveServer(raft.ServerID("wrap-ghost"), 0, wrapTimeout)
			}
			if err := f.Error(); err != nil {
				t.Fatalf("configuration change: %v", err)
			}
			run.confIndexes = append(run.confIndexes, f.Index())
		case s.snapshot:
			flush()
			wrapBarrier(t, r)
			if err := r.Snapshot().Error(); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
		}
	}
	flush()
	wrapBarrier(t, r)
	return run
}

// wrapExpectedEvents is what a host of the given kind must see for the
// scenario: what raft would call on it alone.
func wrapExpectedEvents(kind string, steps []wrapStep, self raft.Server) []wrapEvent {
	batching := strings.HasPrefix(kind, "batching")
	confs := kind == "confstore"
	cmdKind := "apply"
	if batching {
		cmdKind = "batch"
	}
	conf := func(servers []raft.Server) []wrapEvent {
		switch {
		case batching:
			return []wrapEvent{{Kind: "batch", Type: raft.LogConfiguration, Servers: servers}}
		case confs:
			return []wrapEvent{{Kind: "conf", Type: raft.LogConfiguration, Servers: servers}}
		}
		return nil
	}
	out := conf([]raft.Server{self}) // the bootstrap configuration
	for _, s := range steps {
		switch {
		case s.host != "":
			out = append(out, wrapEvent{Kind: cmdKind, Type: raft.LogCommand, Data: s.host, Ext: s.ext})
		case s.conf != nil:
			out = append(out, conf(s.conf)...)
		case s.snapshot:
			out = append(out, wrapEvent{Kind: "snapshot"})
		}
	}
	return out
}

// TestWrapHostSeesSameCalls runs the same host workload on a real raft
// node with the host alone and with the host wrapped while admitd's
// commands are interleaved: the host must get the same calls in the same
// order, never an admitd entry, and admitd's state must have its commands.
func TestWrapHostSeesSameCalls(t *testing.T) {
	for _, kind := range wrapHostKinds {
		t.Run(kind.name, func(t *testing.T) {
			addrAlone := raft.ServerAddress("wrap-alone")
			addrWrapped := raft.ServerAddress("wrap-wrapped")
			ghost := raft.Server{Suffrage: raft.Nonvoter, ID: "wrap-ghost", Address: "wrap-ghost-addr"}

			// The host alone.
			alone := &wrapHost{}
			rAlone := wrapRaft(t, kind.make(alone), raft.NewInmemStore(), raft.NewInmemSnapshotStore(), addrAlone)
			wrapBootstrap(t, rAlone, addrAlone)
			runAlone := wrapRunScenario(t, rAlone, wrapScenario(wrapSelf(addrAlone), ghost), false)

			// The host wrapped, with admitd's commands between its own.
			wrapped := &wrapHost{}
			w := WrapFSM(kind.make(wrapped))
			rWrapped := wrapRaft(t, w, raft.NewInmemStore(), raft.NewInmemSnapshotStore(), addrWrapped)
			wrapBootstrap(t, rWrapped, addrWrapped)
			steps := wrapScenario(wrapSelf(addrWrapped), ghost)
			run := wrapRunScenario(t, rWrapped, steps, true)

			// The servers differ only by the node's own address; compare
			// the alone run after renaming it.
			gotAlone := wrapEvents(alone.recorded())
			for i := range gotAlone {
				for j := range gotAlone[i].Servers {
					if gotAlone[i].Servers[j].ID == raft.ServerID(addrAlone) {
						gotAlone[i].Servers[j] = wrapSelf(addrWrapped)
					}
				}
			}
			gotWrapped := wrapEvents(wrapped.recorded())
			if !reflect.DeepEqual(gotWrapped, gotAlone) {
				t.Errorf("host calls differ\n with wrapper: %+v\n alone:        %+v", gotWrapped, gotAlone)
			}
			if want := wrapExpectedEvents(kind.name, steps, wrapSelf(addrWrapped)); !reflect.DeepEqual(gotWrapped, want) {
				t.Errorf("host calls with wrapper\n got:  %+v\n want: %+v", gotWrapped, want)
			}

			// Per call: never an admitd entry, never an empty batch, and the
			// host's entries carry their real log indexes, increasing.
			var last uint64
			var cmdIndexes []uint64
			largest := 0
			for _, c := range wrapped.recorded() {
				if c.Kind == "batch" && len(c.Entries) == 0 {
					t.Errorf("empty ApplyBatch call")
				}
				largest = max(largest, len(c.Entries))
				for _, e := range c.Entries {
					if e.Ext == string(Extension) {
						t.Errorf("host was handed admitd's entry %+v", e)
					}
					if e.Index <= last {
						t.Errorf("host entry index %d after %d", e.Index, last)
					}
					last = e.Index
					if e.Type == raft.LogCommand {
						cmdIndexes = append(cmdIndexes, e.Index)
					}
				}
			}
			t.Logf("largest host call: %d entries", largest)
			var futIndexes []uint64
			for _, f := range run.hostFutures {
				futIndexes = append(futIndexes, f.Index())
			}
			if !slices.Equal(cmdIndexes, futIndexes) {
				t.Errorf("host command indexes %v, futures' %v", cmdIndexes, futIndexes)
			}
			// The indexes differ from the alone run by admitd's entries.
			if runAlone.hostFutures[len(runAlone.hostFutures)-1].Index() >= futIndexes[len(futIndexes)-1] {
				t.Errorf("admitd's entries did not take log indexes")
			}

			// Responses: the host's (its data length) and admitd's.
			for i, f := range run.hostFutures {
				if got := f.Response(); got != len(run.hostData[i]) {
					t.Errorf("host command %q response %v, want %d", run.hostData[i], got, len(run.hostData[i]))
				}
			}
			for i, f := range run.ownFutures {
				err, _ := f.Response().(error)
				if bad := i == 3; bad != (err != nil) {
					t.Errorf("admitd command %d response %v", i, f.Response())
				}
			}
			if got, want := wrapped.applied(), alone.applied(); !slices.Equal(got, want) {
				t.Errorf("host state %q, alone %q", got, want)
			}

			// admitd's state has its commands and the last configuration.
			if got := w.st.clusterID(); got != "c1" {
				t.Errorf("cluster id %q", got)
			}
			wantMembers := map[string]Member{"n1": {APIURL: "http://n1/5"}, "n2": {APIURL: "http://n2"}}
			if got := w.st.members(); !reflect.DeepEqual(got, wantMembers) {
				t.Errorf("members %v, want %v", got, wantMembers)
			}
			index, servers := w.st.configuration()
			if index != run.confIndexes[1] || !slices.Equal(servers, []raft.Server{wrapSelf(addrWrapped)}) {
				t.Errorf("admitd configuration %d %v, want %d [self]", index, servers, run.confIndexes[1])
			}
			if w.RestoredLegacy() {
				t.Errorf("RestoredLegacy on a node that never restored")
			}
		})
	}
}

// TestWrapResponses checks each future gets its own entry's response when
// host and admitd entries share raft's batches.
func TestWrapResponses(t *testing.T) {
	for _, kind := range wrapHostKinds {
		t.Run(kind.name, func(t *testing.T) {
			addr := raft.ServerAddress("wrap-responses")
			w := WrapFSM(kind.make(&wrapHost{}))
			r := wrapRaft(t, w, raft.NewInmemStore(), raft.NewInmemSnapshotStore(), addr)
			wrapBootstrap(t, r, addr)

			var hostFs, goodFs, badFs []raft.ApplyFuture
			for i := range 20 {
				hostFs = append(hostFs, wrapHostCmd(r, strings.Repeat("x", i+1), ""))
				switch i % 3 {
				case 0:
					goodFs = append(goodFs, wrapOwnCmd(t, r, command{Op: opRegister, ID: fmt.Sprint("m", i)}))
				case 1:
					badFs = append(badFs, wrapOwnCmd(t, r, command{Op: "bogus"}))
				case 2:
					// Not JSON, but marked as admitd's.
					badFs = append(badFs, r.ApplyLog(raft.Log{Data: []byte("{"), Extensions: Extension}, wrapTimeout))
				}
			}
			wrapWait(t, hostFs...)
			wrapWait(t, goodFs...)
			wrapWait(t, badFs...)
			for i, f := range hostFs {
				if got := f.Response(); got != i+1 {
					t.Errorf("host command %d: response %v, want %d", i, got, i+1)
				}
			}
			for i, f := range goodFs {
				if got := f.Response(); got != nil {
					t.Errorf("admitd command %d: response %v, want nil", i, got)
				}
			}
			for i, f := range badFs {
				if err, ok := f.Response().(error); !ok || err == nil {
					t.Errorf("bad admitd command %d: response %v, want an error", i, f.Response())
				}
			}
			if got := len(w.st.members()); got != len(goodFs) {
				t.Errorf("%d members, want %d", got, len(goodFs))
			}
		})
	}
}

// TestWrapSnapshotCarriesBothStates snapshots a wrapped node and restores
// the snapshot into a fresh wrapper, and into a restarted node.
func TestWrapSnapshotCarriesBothStates(t *testing.T) {
	addr := raft.ServerAddress("wrap-snap")
	logs := raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	host := &wrapHost{}
	w := WrapFSM(wrapConfHost{host})
	r := wrapRaft(t, w, logs, snaps, addr)
	wrapBootstrap(t, r, addr)
	stage := &Stage{AdmissionID: "a1", RaftAddr: "n2:1", APIURL: "http://n2", StagedAtMS: 7}
	wrapWait(t,
		wrapHostCmd(r, "h1", ""),
		wrapOwnCmd(t, r, command{Op: opSetClusterID, ClusterID: "snap-cluster"}),
		wrapOwnCmd(t, r, command{Op: opRegister, ID: "n1", APIURL: "http://n1"}),
		wrapHostCmd(r, "h2", ""),
		wrapOwnCmd(t, r, command{Op: opRegister, ID: "n2", APIURL: "http://n2", Stage: stage}),
		wrapOwnCmd(t, r, command{Op: opTombstone, ID: "gone"}),
	)
	wrapBarrier(t, r)
	meta, data := wrapTakeSnapshot(t, r)
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		t.Fatalf("snapshot does not open with the magic: %q", data)
	}

	wantHost := []string{"h1", "h2"}
	wantMembers := map[string]Member{"n1": {APIURL: "http://n1"}, "n2": {APIURL: "http://n2"}}
	wantIndex, wantServers := w.st.configuration()
	if wantIndex == 0 || wantIndex != meta.ConfigurationIndex {
		t.Fatalf("admitd config index %d, snapshot's %d", wantIndex, meta.ConfigurationIndex)
	}
	check := func(t *testing.T, host *wrapHost, w *FSM) {
		t.Helper()
		if got := host.applied(); !slices.Equal(got, wantHost) {
			t.Errorf("host state %q, want %q", got, wantHost)
		}
		calls := host.recorded()
		if len(calls) == 0 || calls[0].Kind != "restore" || calls[0].Data != `["h1","h2"]` {
			t.Errorf("host calls %+v, want a restore of its own bytes first", calls)
		}
		if w.RestoredLegacy() {
			t.Errorf("RestoredLegacy after a wrapped snapshot")
		}
		if got := w.st.clusterID(); got != "snap-cluster" {
			t.Errorf("cluster id %q", got)
		}
		if got := w.st.members(); !reflect.DeepEqual(got, wantMembers) {
			t.Errorf("members %v, want %v", got, wantMembers)
		}
		if got := w.st.staged(); !reflect.DeepEqual(got, map[string]Stage{"n2": *stage}) {
			t.Errorf("staged %v", got)
		}
		if got := w.st.tombstones(); !slices.Equal(got, []string{"gone"}) {
			t.Errorf("tombstones %v", got)
		}
		index, servers := w.st.configuration()
		if index != wantIndex || !slices.Equal(servers, wantServers) {
			t.Errorf("configuration %d %v, want %d %v", index, servers, wantIndex, wantServers)
		}
	}

	t.Run("restore", func(t *testing.T) {
		host2 := &wrapHost{}
		w2 := WrapFSM(host2)
		w2.setLegacy(true) // a wrapped restore must clear it
		if err := w2.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			t.Fatalf("restore: %v", err)
		}
		check(t, host2, w2)
	})

	t.Run("restart", func(t *testing.T) {
		if err := r.Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
		host3 := &wrapHost{}
		w3 := WrapFSM(wrapConfHost{host3})
		r3 := wrapRaft(t, w3, logs, snaps, addr)
		check(t, host3, w3) // raft.NewRaft restored the snapshot
		wrapWaitLeader(t, r3)
		wrapWait(t, wrapHostCmd(r3, "h3", ""), wrapOwnCmd(t, r3, command{Op: opRegister, ID: "n3"}))
		wrapBarrier(t, r3)
		if got := host3.applied(); !slices.Equal(got, []string{"h1", "h2", "h3"}) {
			t.Errorf("host state after restart %q", got)
		}
		if got := len(w3.st.members()); got != 3 {
			t.Errorf("%d members after restart, want 3", got)
		}
	})
}

// TestWrapRollingUpgrade starts a node wrapped on the stores of a node
// that ran the host alone: the host's snapshot is the host's, admitd's
// state starts empty, and both then go on.
func TestWrapRollingUpgrade(t *testing.T) {
	addr := raft.ServerAddress("wrap-upgrade")
	logs := raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	// Before the upgrade: the host alone.
	old := &wrapHost{}
	rOld := wrapRaft(t, old, logs, snaps, addr)
	wrapBootstrap(t, rOld, addr)
	for i := range 5 {
		wrapWait(t, wrapHostCmd(rOld, fmt.Sprint("h", i), ""))
	}
	wrapBarrier(t, rOld)
	_, legacy := wrapTakeSnapshot(t, rOld)
	if bytes.HasPrefix(legacy, []byte(snapshotMagic)) {
		t.Fatalf("the host's own snapshot has the magic")
	}
	wrapWait(t, wrapHostCmd(rOld, "h5-after-snapshot", ""))
	if err := rOld.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}

	// After: the same stores, the host wrapped.
	host := &wrapHost{}
	w := WrapFSM(host)
	r := wrapRaft(t, w, logs, snaps, addr)
	// raft.NewRaft restored the old snapshot before returning; the node may
	// already lead and replay the entry after it.
	calls := host.recorded()
	if len(calls) == 0 || calls[0].Kind != "restore" || calls[0].Data != string(legacy) {
		t.Fatalf("host calls at start %+v, want a restore of the old snapshot %q first", calls, legacy)
	}
	if got, want := host.applied(), []string{"h0", "h1", "h2", "h3", "h4"}; !slices.Equal(got[:min(len(got), 5)], want) {
		t.Errorf("host state from the old snapshot %q, want %q", got, want)
	}
	if !w.RestoredLegacy() {
		t.Errorf("RestoredLegacy false after the host's own snapshot")
	}
	if id, members := w.st.clusterID(), w.st.members(); id != "" || len(members) != 0 {
		t.Errorf("admitd state not empty: %q %v", id, members)
	}
	if index, servers := w.st.configuration(); index != 0 || len(servers) != 0 {
		t.Errorf("admitd configuration not empty: %d %v", index, servers)
	}

	wrapWaitLeader(t, r)
	wrapBarrier(t, r) // the entry after the snapshot is applied again
	if got, want := host.applied(), []string{"h0", "h1", "h2", "h3", "h4", "h5-after-snapshot"}; !slices.Equal(got, want) {
		t.Errorf("host state after replay %q, want %q", got, want)
	}
	set := wrapOwnCmd(t, r, command{Op: opSetClusterID, ClusterID: "upgraded"})
	reg := wrapOwnCmd(t, r, command{Op: opRegister, ID: "n1", APIURL: "http://n1"})
	h6 := wrapHostCmd(r, "h6", "")
	wrapWait(t, set, reg, h6)
	if set.Response() != nil || reg.Response() != nil || h6.Response() != 2 {
		t.Errorf("responses %v %v %v", set.Response(), reg.Response(), h6.Response())
	}
	if got := w.st.clusterID(); got != "upgraded" {
		t.Errorf("cluster id %q", got)
	}
	if got := w.st.members(); !reflect.DeepEqual(got, map[string]Member{"n1": {APIURL: "http://n1"}}) {
		t.Errorf("members %v", got)
	}
	// The configuration index was in the old snapshot; committing the
	// configuration again (as Host.refreshConfiguration does) teaches it.
	again := r.AddVoter(raft.ServerID(addr), addr, 0, wrapTimeout)
	if err := again.Error(); err != nil {
		t.Fatal(err)
	}
	wrapBarrier(t, r)
	if index, servers := w.st.configuration(); index != again.Index() || !slices.Equal(servers, []raft.Server{wrapSelf(addr)}) {
		t.Errorf("configuration %d %v, want %d [self]", index, servers, again.Index())
	}
	for _, c := range host.recorded() {
		for _, e := range c.Entries {
			if e.Ext == string(Extension) || e.Type != raft.LogCommand {
				t.Errorf("plain host handed %+v", e)
			}
		}
	}
	if got, want := host.applied(), []string{"h0", "h1", "h2", "h3", "h4", "h5-after-snapshot", "h6"}; !slices.Equal(got, want) {
		t.Errorf("host state %q, want %q", got, want)
	}

	// The next snapshot is wrapped and clears RestoredLegacy on restore.
	_, data := wrapTakeSnapshot(t, r)
	w2 := WrapFSM(&wrapHost{})
	if err := w2.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if w2.RestoredLegacy() || w2.st.clusterID() != "upgraded" {
		t.Errorf("after a wrapped restore: legacy %v, cluster id %q", w2.RestoredLegacy(), w2.st.clusterID())
	}
}

// wrapTrackRC is a snapshot reader that records being closed.
type wrapTrackRC struct {
	io.Reader
	closed bool
}

func (c *wrapTrackRC) Close() error { c.closed = true; return nil }

func wrapHeader(size uint64, rest string) []byte {
	b := []byte(snapshotMagic)
	b = binary.BigEndian.AppendUint64(b, size)
	return append(b, rest...)
}

// TestWrapRestoreHostile feeds Restore snapshots that open with the magic
// but are broken: each is an error, never a panic, the reader is closed
// and the host is not called.
func TestWrapRestoreHostile(t *testing.T) {
	cases := map[string][]byte{
		"magic only":          []byte(snapshotMagic),
		"truncated length":    append([]byte(snapshotMagic), 0, 0, 1),
		"length over bound":   wrapHeader(maxOwnSnapshot+1, "{}[]"),
		"length max uint64":   wrapHeader(^uint64(0), "{}[]"),
		"length sign bit":     wrapHeader(1<<63, "{}[]"),
		"truncated state":     wrapHeader(100, `{"cluster_id":"x"`),
		"state not json":      wrapHeader(3, "xyz[]"),
		"state cut by length": wrapHeader(5, `{"cluster_id":"x"}[]`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			host := &wrapHost{}
			w := WrapFSM(host)
			rc := &wrapTrackRC{Reader: bytes.NewReader(data)}
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Restore panicked: %v", p)
					}
				}()
				err = w.Restore(rc)
			}()
			if err == nil {
				t.Errorf("Restore accepted %q", data)
			}
			if !rc.closed {
				t.Errorf("snapshot reader not closed")
			}
			if calls := host.recorded(); len(calls) != 0 {
				t.Errorf("host called: %+v", calls)
			}
		})
	}
}

// TestWrapRestoreLegacy: a snapshot without the magic, however short, is
// the host's, whole.
func TestWrapRestoreLegacy(t *testing.T) {
	for _, data := range []string{`[]`, `["a"]`, `["` + strings.Repeat("z", 5000) + `"]`, `["admitd wrapped fsm snapshot v2"]`} {
		host := &wrapHost{}
		w := WrapFSM(host)
		w.st.StoreConfiguration(9, raft.Configuration{Servers: []raft.Server{wrapSelf("x")}})
		w.st.Apply(&raft.Log{Data: []byte(`{"op":"set_cluster_id","cluster_id":"stale"}`)})
		if err := w.Restore(io.NopCloser(strings.NewReader(data))); err != nil {
			t.Errorf("restore %.40q: %v", data, err)
			continue
		}
		calls := host.recorded()
		if len(calls) != 1 || calls[0].Kind != "restore" || calls[0].Data != data {
			t.Errorf("restore %.40q: host calls %.200v", data, calls)
		}
		if !w.RestoredLegacy() {
			t.Errorf("restore %.40q: not legacy", data)
		}
		if index, _ := w.st.configuration(); w.st.clusterID() != "" || index != 0 {
			t.Errorf("restore %.40q: admitd state kept: %q %d", data, w.st.clusterID(), index)
		}
	}
	// An empty snapshot goes to the host too (which refuses it).
	host := &wrapHost{}
	err := WrapFSM(host).Restore(io.NopCloser(strings.NewReader("")))
	if calls := host.recorded(); err == nil || len(calls) != 1 || calls[0].Data != "" {
		t.Errorf("empty snapshot: err %v, host calls %+v", err, calls)
	}
}

// TestWrapStoreConfiguration: a direct StoreConfiguration reaches admitd's
// state and a host that stores configurations.
func TestWrapStoreConfiguration(t *testing.T) {
	host := &wrapHost{}
	w := WrapFSM(wrapConfHost{host})
	cfg := raft.Configuration{Servers: []raft.Server{wrapSelf("a"), wrapSelf("b")}}
	w.StoreConfiguration(7, cfg)
	if index, servers := w.st.configuration(); index != 7 || !slices.Equal(servers, cfg.Servers) {
		t.Errorf("admitd configuration %d %v", index, servers)
	}
	calls := host.recorded()
	if len(calls) != 1 || calls[0].Kind != "conf" || calls[0].Entries[0].Index != 7 || !slices.Equal(calls[0].Entries[0].Servers, cfg.Servers) {
		t.Errorf("host calls %+v", calls)
	}
	WrapFSM(nil).StoreConfiguration(1, cfg) // no host, no panic
	WrapFSM(&wrapHost{}).StoreConfiguration(1, cfg)
}

// TestWrapNilHost runs a real node whose wrapper has no host.
func TestWrapNilHost(t *testing.T) {
	addr := raft.ServerAddress("wrap-nil")
	logs := raft.NewInmemStore()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w := WrapFSM(nil)
	if w.Host() != nil {
		t.Fatalf("Host() = %v", w.Host())
	}
	r := wrapRaft(t, w, logs, snaps, addr)
	wrapBootstrap(t, r, addr)
	set := wrapOwnCmd(t, r, command{Op: opSetClusterID, ClusterID: "nil-host"})
	hostCmd := wrapHostCmd(r, "for nobody", "")
	hostExt := wrapHostCmd(r, "for nobody either", "host.ext")
	reg := wrapOwnCmd(t, r, command{Op: opRegister, ID: "n1", APIURL: "http://n1"})
	bad := wrapOwnCmd(t, r, command{Op: "bogus"})
	wrapWait(t, set, hostCmd, hostExt, reg, bad)
	if set.Response() != nil || reg.Response() != nil || hostCmd.Response() != nil || hostExt.Response() != nil {
		t.Errorf("responses %v %v %v %v", set.Response(), reg.Response(), hostCmd.Response(), hostExt.Response())
	}
	if _, ok := bad.Response().(error); !ok {
		t.Errorf("bad command response %v", bad.Response())
	}
	wrapBarrier(t, r)
	wantMembers := map[string]Member{"n1": {APIURL: "http://n1"}}
	if w.st.clusterID() != "nil-host" || !reflect.DeepEqual(w.st.members(), wantMembers) {
		t.Fatalf("state %q %v", w.st.clusterID(), w.st.members())
	}
	wantIndex, _ := w.st.configuration()
	if wantIndex == 0 {
		t.Errorf("no configuration index")
	}

	_, data := wrapTakeSnapshot(t, r)
	check := func(what string, w *FSM) {
		t.Helper()
		index, _ := w.st.configuration()
		if w.RestoredLegacy() || w.st.clusterID() != "nil-host" || !reflect.DeepEqual(w.st.members(), wantMembers) || index != wantIndex {
			t.Errorf("%s: legacy %v, state %q %v %d", what, w.RestoredLegacy(), w.st.clusterID(), w.st.members(), index)
		}
	}
	w2 := WrapFSM(nil)
	if err := w2.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("restore: %v", err)
	}
	check("restore", w2)

	// A snapshot with a host's state in it: the host's part is skipped.
	withHost := WrapFSM(&wrapHost{})
	withHost.st.Apply(&raft.Log{Data: []byte(`{"op":"set_cluster_id","cluster_id":"other"}`)})
	snap, err := withHost.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &wrapSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	rc := &wrapTrackRC{Reader: bytes.NewReader(sink.Bytes())}
	w3 := WrapFSM(nil)
	if err := w3.Restore(rc); err != nil || !rc.closed || w3.st.clusterID() != "other" {
		t.Errorf("restore of a host's wrapped snapshot: %v, closed %v, cluster id %q", err, rc.closed, w3.st.clusterID())
	}
	// A legacy snapshot: nothing for admitd.
	if err := w3.Restore(io.NopCloser(strings.NewReader(`["h"]`))); err != nil || !w3.RestoredLegacy() || w3.st.clusterID() != "" {
		t.Errorf("legacy restore without host: %v, legacy %v, cluster id %q", err, w3.RestoredLegacy(), w3.st.clusterID())
	}

	// A restart restores the snapshot through raft.
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	w4 := WrapFSM(nil)
	r4 := wrapRaft(t, w4, logs, snaps, addr)
	check("restart", w4)
	wrapWaitLeader(t, r4)
	wrapWait(t, wrapHostCmd(r4, "still nobody", ""), wrapOwnCmd(t, r4, command{Op: opRegister, ID: "n2"}))
	if got := len(w4.st.members()); got != 2 {
		t.Errorf("%d members after restart, want 2", got)
	}
}

// wrapSink is an in-memory raft.SnapshotSink.
type wrapSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *wrapSink) ID() string    { return "wrap" }
func (s *wrapSink) Cancel() error { s.cancelled = true; return nil }
func (s *wrapSink) Close() error  { return nil }
