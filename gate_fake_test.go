package admitd

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/policies"
	"github.com/admitd/admitd/raftglue"
)

// Gate tests over fakeRaft (fakeraft_test.go): the gate's admission,
// retry, settle and promoter logic against a raft whose every answer the
// test decides, with real candidates (in-process raft servers, never
// bootstrapped) so that the facts are collected as in production.

const (
	fakeInterval = 20 * time.Millisecond
	fakeWaitFor  = 15 * time.Second // bounds every poll; never reached when the gate works
)

// fakeCollect keeps collection short; every candidate is on 127.0.0.1.
var fakeCollect = facts.CollectConfig{
	Overall:          3 * time.Second,
	Reachability:     time.Second,
	InitState:        time.Second,
	Topology:         time.Second,
	RaftDialAttempts: 1,
	DialTimeout:      300 * time.Millisecond,
}

// --- Candidates ---------------------------------------------------------------

// fakeCandidate is a fresh raft server: TCP transport on 127.0.0.1, in-memory
// stores, never bootstrapped, as a node asking to join is.
type fakeCandidate struct {
	id    string
	r     *raft.Raft
	trans *raft.NetworkTransport
	once  sync.Once
}

type fakeNopFSM struct{}

func (fakeNopFSM) Apply(*raft.Log) any                 { return nil }
func (fakeNopFSM) Snapshot() (raft.FSMSnapshot, error) { return fakeNopSnapshot{}, nil }
func (fakeNopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type fakeNopSnapshot struct{}

func (fakeNopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (fakeNopSnapshot) Release()                          {}

// Raft timeouts of the candidates' real raft servers. A candidate never
// joins a cluster (the leader is fakeRaft), so these only keep raft's
// ordering (LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout);
// they are the values of the suite's other in-process servers
// (example_test.go), whose leadership must survive half a second
// unscheduled under -race on a loaded 2-core machine.
const (
	fakeHeartbeatTimeout   = 500 * time.Millisecond
	fakeElectionTimeout    = 500 * time.Millisecond
	fakeLeaderLeaseTimeout = 500 * time.Millisecond
)

func startFakeCandidate(t *testing.T, id string) *fakeCandidate {
	t.Helper()
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, time.Second, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.HeartbeatTimeout = fakeHeartbeatTimeout
	conf.ElectionTimeout = fakeElectionTimeout
	conf.LeaderLeaseTimeout = fakeLeaderLeaseTimeout
	conf.CommitTimeout = 5 * time.Millisecond
	conf.Logger = hclog.NewNullLogger()
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(conf, fakeNopFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		trans.Close()
		t.Fatal(err)
	}
	n := &fakeCandidate{id: id, r: r, trans: trans}
	t.Cleanup(n.stop)
	return n
}

func (n *fakeCandidate) addr() string { return string(n.trans.LocalAddr()) }

// candidate has no API: its facts come from its raft address alone.
func (n *fakeCandidate) candidate() Candidate { return Candidate{ID: n.id, RaftAddr: n.addr()} }

func (n *fakeCandidate) stop() {
	n.once.Do(func() {
		_ = n.r.Shutdown().Error()
		_ = n.trans.Close()
	})
}

// --- Gates and their decisions ------------------------------------------------

type recordedDecision struct {
	via string
	d   Decision // a copy, taken when the gate recorded it
}

// decisionRecorder is a WithDecisionHook that keeps every decision.
type decisionRecorder struct {
	mu   sync.Mutex
	list []recordedDecision
}

func (r *decisionRecorder) hook(d *Decision, via string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, recordedDecision{via: via, d: *d})
}

func (r *decisionRecorder) all(via string) []Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Decision
	for _, x := range r.list {
		if via == "" || x.via == via {
			out = append(out, x.d)
		}
	}
	return out
}

func (r *decisionRecorder) find(via string, match func(d *Decision) bool) (Decision, bool) {
	for _, d := range r.all(via) {
		if match(&d) {
			return d, true
		}
	}
	return Decision{}, false
}

// newFakeGate builds a staged gate over f (applying to fsm) that promotes every
// fakeInterval, with short collection, recording every decision. opts
// come last and win.
func newFakeGate(t *testing.T, f *fakeRaft, fsm *FSM, opts ...Option) (*Gate, *decisionRecorder) {
	t.Helper()
	rec := &decisionRecorder{}
	base := []Option{
		WithLocalID(fakeLeaderID),
		WithStaging(Staging{Enabled: true, Interval: fakeInterval, Deadline: time.Minute}),
		WithCollect(fakeCollect),
		WithDeadlines(Deadlines{Admit: 20 * time.Second, Apply: 3 * time.Second}),
		WithDecisionHook(rec.hook),
	}
	g, err := New(f, fsm, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g, rec
}

// fakeFastPolicies is the shipped set with min_healthy_ms lowered from 10s to
// 60ms, so a caught-up candidate is promoted within a few rounds.
func fakeFastPolicies(t *testing.T) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	settings := string(m["settings.rego"].Data)
	const from = `"min_healthy_ms": 10000`
	if !strings.Contains(settings, from) {
		t.Fatalf("settings.rego no longer says %s", from)
	}
	m["settings.rego"].Data = []byte(strings.Replace(settings, from, `"min_healthy_ms": 60`, 1))
	return m
}

func gateTestContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// gateEventually polls cond until it holds, failing the test after fakeWaitFor.
func gateEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(fakeWaitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", fakeWaitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateConsistently checks cond for d: how an absence is observed.
func gateConsistently(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("not %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeAdmitOK admits c and requires an applied allow.
func fakeAdmitOK(t *testing.T, g *Gate, c Candidate) *Decision {
	t.Helper()
	d, err := g.Admit(gateTestContext(t), c)
	if err != nil {
		t.Fatalf("admit %s: %v", c.ID, err)
	}
	if !d.Allowed || d.Applied == nil {
		t.Fatalf("admit %s: allowed %v applied %+v: %s", c.ID, d.Allowed, d.Applied, d.Reason)
	}
	return d
}

// gateChanges is the value of admitd_configuration_changes_total{result}.
func gateChanges(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	return gateCounter(t, reg, "admitd_configuration_changes_total", "result", result)
}

// gateCounter is the value of the counter name{label="value"}, 0 if absent.
func gateCounter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func fakeAddCalls(f *fakeRaft) []changeCall {
	var out []changeCall
	for _, c := range f.changeCalls() {
		if c.Kind != "remove" {
			out = append(out, c)
		}
	}
	return out
}

// fakeCountingFSM is a host FSM that counts what it is given.
type fakeCountingFSM struct {
	fakeNopFSM
	applied atomic.Int64
}

func (c *fakeCountingFSM) Apply(*raft.Log) any { c.applied.Add(1); return nil }

// --- 1. A configuration change raced the add ----------------------------------

// The first add finds the configuration moved since the facts were read
// (another change committed in between); the gate collects again and the
// second attempt applies with the new prevIndex. The decision returned is
// the second one.
func TestGateConfigChangedRedecides(t *testing.T) {
	host := &fakeCountingFSM{}
	fsm := WrapFSM(host)
	f := newFakeRaft(t, fsm)
	reg := prometheus.NewRegistry()
	g, rec := newFakeGate(t, f, fsm, WithRegisterer(reg))
	c := startFakeCandidate(t, "c1")

	f.raceNextAdds(1)
	d := fakeAdmitOK(t, g, c.candidate())

	calls := fakeAddCalls(f)
	if len(calls) != 2 {
		t.Fatalf("%d adds, want 2: %+v", len(calls), calls)
	}
	first, second := calls[0], calls[1]
	if first.Kind != "add_nonvoter" || !first.Raced || first.PrevIndex != 1 ||
		first.Err == nil || !strings.Contains(first.Err.Error(), "configuration changed since 1") {
		t.Fatalf("first add %+v, want add_nonvoter at prevIndex 1 refused as changed", first)
	}
	if second.Raced || second.Err != nil || second.PrevIndex <= first.PrevIndex {
		t.Fatalf("second add %+v, want applied at a newer prevIndex than %d", second, first.PrevIndex)
	}
	if d.ConfigIndex != second.PrevIndex {
		t.Fatalf("the decision returned read the facts at %d; the applied add used prevIndex %d", d.ConfigIndex, second.PrevIndex)
	}
	if d.Applied.Suffrage != facts.Nonvoter || d.Applied.Index != second.Index {
		t.Fatalf("applied %+v, want nonvoter at %d", d.Applied, second.Index)
	}
	if got := f.suffrage(c.id); got != "Nonvoter" {
		t.Fatalf("the candidate is %q in the configuration", got)
	}
	st, ok := g.Host().Staged()[c.id]
	if !ok || st.AdmissionID != d.DecisionID || d.AdmissionID != d.DecisionID {
		t.Fatalf("stage %+v (%v); decision %s admission %s", st, ok, d.DecisionID, d.AdmissionID)
	}
	if n := gateChanges(t, reg, "configuration_changed"); n != 1 {
		t.Fatalf("configuration_changed = %v, want 1", n)
	}
	if n := gateChanges(t, reg, "applied"); n != 1 {
		t.Fatalf("applied = %v, want 1", n)
	}
	got, ok := rec.find("admission", func(x *Decision) bool { return x.DecisionID == d.DecisionID })
	if !ok || got.Applied == nil || got.ConfigIndex != second.PrevIndex {
		t.Fatalf("the hook did not see the applied decision: %+v", rec.all("admission"))
	}
	if n := host.applied.Load(); n != 0 {
		t.Fatalf("the host FSM was handed %d of admitd's entries", n)
	}
}

// WithDecisionHook promises every decision the gate makes. The first
// attempt's allow was made, enforced, and its id became the admission id of
// a stage written to the replicated log (then unstaged), so the hook (and
// the decision log) must see it as well as the second.
func TestGateConfigChangedRecordsRacedDecision(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	reg := prometheus.NewRegistry()
	g, rec := newFakeGate(t, f, fsm, WithRegisterer(reg))
	c := startFakeCandidate(t, "c1")

	f.raceNextAdds(1)
	d := fakeAdmitOK(t, g, c.candidate())

	if n := gateCounter(t, reg, "admitd_decisions_total", "outcome", "allow"); n != 2 {
		t.Errorf("admitd_decisions_total{outcome=allow} = %v, want 2: two allows were evaluated and enforced", n)
	}

	admissions := rec.all("admission")
	if len(admissions) != 2 {
		var seen []string
		for _, x := range admissions {
			seen = append(seen, x.DecisionID)
		}
		t.Fatalf("the hook saw %d admission decisions %v, want 2: the raced allow, then the applied %s", len(admissions), seen, d.DecisionID)
	}
	if admissions[0].DecisionID == d.DecisionID || !admissions[0].Allowed || admissions[0].Applied != nil {
		t.Fatalf("first recorded %+v, want the raced allow, not applied", admissions[0])
	}
	if admissions[1].DecisionID != d.DecisionID {
		t.Fatalf("second recorded %s, want %s", admissions[1].DecisionID, d.DecisionID)
	}
}

// --- 2. It kept changing --------------------------------------------------------

func TestGateKeptChanging(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	reg := prometheus.NewRegistry()
	g, _ := newFakeGate(t, f, fsm, WithRegisterer(reg), WithMaxAttempts(3))
	c := startFakeCandidate(t, "c1")

	f.raceNextAdds(-1)
	d, err := g.Admit(gateTestContext(t), c.candidate())
	if !errors.Is(err, ErrKeptChanging) || d != nil {
		t.Fatalf("admit: %+v, %v; want ErrKeptChanging", d, err)
	}
	calls := fakeAddCalls(f)
	if len(calls) != 3 {
		t.Fatalf("%d adds, want 3 (WithMaxAttempts): %+v", len(calls), calls)
	}
	for i, call := range calls {
		if !call.Raced || call.Err == nil || !strings.Contains(call.Err.Error(), "configuration changed since") {
			t.Fatalf("add %d: %+v", i, call)
		}
		if i > 0 && call.PrevIndex <= calls[i-1].PrevIndex {
			t.Fatalf("add %d reused prevIndex %d: the facts were not collected again", i, call.PrevIndex)
		}
	}
	if got := f.suffrage(c.id); got != "" {
		t.Fatalf("the candidate is %q in the configuration", got)
	}
	if st := g.Host().Staged(); len(st) != 0 {
		t.Fatalf("stages left behind: %v", st)
	}
	if n := gateChanges(t, reg, "configuration_changed"); n != 3 {
		t.Fatalf("configuration_changed = %v, want 3", n)
	}
}

// --- 3, 4. Leadership lost during the add --------------------------------------

// The add answered leadership lost, but it committed and this server still
// leads: the configuration says it was applied.
func TestGateLeadershipLostButCommitted(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	g, rec := newFakeGate(t, f, fsm)
	c := startFakeCandidate(t, "c1")

	f.failNextChange(raft.ErrLeadershipLost, true, false)
	d := fakeAdmitOK(t, g, c.candidate())
	if d.Applied.Suffrage != facts.Nonvoter {
		t.Fatalf("applied %+v", d.Applied)
	}
	if got := f.suffrage(c.id); got != "Nonvoter" {
		t.Fatalf("the candidate is %q", got)
	}
	calls := fakeAddCalls(f)
	if len(calls) != 1 || !errors.Is(calls[0].Err, raft.ErrLeadershipLost) {
		t.Fatalf("adds %+v, want one, answered leadership lost", calls)
	}
	if _, ok := g.Host().Staged()[c.id]; !ok {
		t.Fatal("the settled staged add has no stage")
	}
	if _, ok := rec.find("admission", func(x *Decision) bool { return x.DecisionID == d.DecisionID && x.Applied != nil }); !ok {
		t.Fatalf("the hook did not see the settled decision: %+v", rec.all(""))
	}
}

func TestGateLeadershipLostNotCommitted(t *testing.T) {
	// Deposed: nobody this server can ask knows whether the add commits
	// (a new leader may still hold it), so the outcome is unknown.
	t.Run("deposed", func(t *testing.T) {
		fsm := WrapFSM(nil)
		f := newFakeRaft(t, fsm)
		g, rec := newFakeGate(t, f, fsm)
		c := startFakeCandidate(t, "c1")

		f.failNextChange(raft.ErrLeadershipLost, false, true)
		d, err := g.Admit(gateTestContext(t), c.candidate())
		if !errors.Is(err, ErrOutcomeUnknown) || d != nil {
			t.Fatalf("admit: %+v, %v; want ErrOutcomeUnknown", d, err)
		}
		if got := f.suffrage(c.id); got != "" {
			t.Fatalf("the candidate is %q", got)
		}
		ds := rec.all("admission")
		if len(ds) != 1 || ds[0].Applied != nil || !strings.Contains(ds[0].Reason, "allowed, but not applied") {
			t.Fatalf("recorded %+v, want one allow, not applied", ds)
		}
	})
	// Still leading: after a barrier the leader's configuration is
	// committed state, and it lacks the candidate: leadership was lost and
	// nothing changed; the stage recorded before the add is reconciled away.
	t.Run("still leading", func(t *testing.T) {
		fsm := WrapFSM(nil)
		f := newFakeRaft(t, fsm)
		g, rec := newFakeGate(t, f, fsm)
		c := startFakeCandidate(t, "c1")

		f.failNextChange(raft.ErrLeadershipLost, false, false)
		d, err := g.Admit(gateTestContext(t), c.candidate())
		if !errors.Is(err, raftglue.ErrLeadershipLost) || errors.Is(err, ErrOutcomeUnknown) || d != nil {
			t.Fatalf("admit: %+v, %v; want ErrLeadershipLost", d, err)
		}
		if got := f.suffrage(c.id); got != "" {
			t.Fatalf("the candidate is %q", got)
		}
		ds := rec.all("admission")
		if len(ds) != 1 || ds[0].Applied != nil {
			t.Fatalf("recorded %+v, want one allow, not applied", ds)
		}
		gateEventually(t, "the promoter drops the stage of the add that never committed", func() bool {
			return len(g.Host().Staged()) == 0
		})
	})
}

// --- 5. On a follower -------------------------------------------------------------

func TestGateFollowerAdmit(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	f.stepDown("n2", "127.0.0.1:7002")
	g, rec := newFakeGate(t, f, fsm)
	c := startFakeCandidate(t, "c1")
	ctx := gateTestContext(t)

	_, err := g.Admit(ctx, c.candidate())
	var nl *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nl) || nl.LeaderID != "n2" || nl.LeaderAddr != "127.0.0.1:7002" {
		t.Fatalf("admit on a follower: %v (%+v)", err, nl)
	}
	if _, err := g.Remove(ctx, "c1"); !errors.As(err, &nl) || nl.LeaderID != "n2" {
		t.Fatalf("remove on a follower: %v", err)
	}
	if _, err := g.Topology(ctx); !errors.As(err, &nl) {
		t.Fatalf("topology on a follower: %v", err)
	}

	f.stepDown("", "")
	_, err = g.Admit(ctx, c.candidate())
	if !errors.As(err, &nl) || nl.LeaderID != "" || !strings.Contains(err.Error(), "no leader is known") {
		t.Fatalf("admit without a leader: %v", err)
	}
	if n := f.applyCount(); n != 0 || len(f.changeCalls()) != 0 {
		t.Fatalf("a follower's gate wrote to raft: %d applies, %+v", n, f.changeCalls())
	}
	if ds := rec.all(""); len(ds) != 0 {
		t.Fatalf("a follower's gate decided: %+v", ds)
	}
}

// --- 6. Bad input -------------------------------------------------------------------

func TestGateBadInput(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		fsm := WrapFSM(nil)
		if _, err := New(nil, fsm); !errors.Is(err, raftglue.ErrNoRaft) {
			t.Fatalf("nil raft: %v", err)
		}
		var nilRaft *raft.Raft
		if _, err := New(nilRaft, fsm); !errors.Is(err, raftglue.ErrNoRaft) {
			t.Fatalf("typed nil *raft.Raft: %v", err)
		}
		if _, err := New(newFakeRaft(t, fsm), nil); !errors.Is(err, raftglue.ErrNoFSM) {
			t.Fatalf("nil FSM: %v", err)
		}
	})
	t.Run("candidate", func(t *testing.T) {
		fsm := WrapFSM(nil)
		f := newFakeRaft(t, fsm)
		g, rec := newFakeGate(t, f, fsm)
		ctx := gateTestContext(t)
		for _, c := range []Candidate{
			{ID: "", RaftAddr: "127.0.0.1:7000"},
			{ID: "has space", RaftAddr: "127.0.0.1:7000"},
			{ID: "c1", RaftAddr: ""},
			{ID: "c1", RaftAddr: "127.0.0.1"},
			{ID: "c1", RaftAddr: "127.0.0.1:0"},
			{ID: "c1", RaftAddr: ":7000"},
			{ID: "c1", RaftAddr: "127.0.0.1:7000", APIURL: "ftp://c1"},
		} {
			if d, err := g.Admit(ctx, c); !errors.Is(err, ErrBadCandidate) || d != nil {
				t.Errorf("admit %+v: %+v, %v; want ErrBadCandidate", c, d, err)
			}
		}
		if len(f.changeCalls()) != 0 || len(rec.all("")) != 0 {
			t.Fatalf("a bad candidate reached raft or the policies: %+v %+v", f.changeCalls(), rec.all(""))
		}
	})
	// raft applies to another wrapper than the one the gate was given: the
	// first read or write of admitd's state says so, without a panic.
	t.Run("wrong FSM", func(t *testing.T) {
		f := newFakeRaft(t, WrapFSM(nil))
		g, _ := newFakeGate(t, f, WrapFSM(nil))
		ctx := gateTestContext(t)
		if _, err := g.Host().ClusterConfig(ctx); !errors.Is(err, raftglue.ErrWrongFSM) {
			t.Fatalf("read: %v", err)
		}
		if err := g.Host().EnsureClusterID(ctx); !errors.Is(err, raftglue.ErrWrongFSM) {
			t.Fatalf("write: %v", err)
		}
		if _, err := g.Remove(ctx, "c9"); !errors.Is(err, raftglue.ErrWrongFSM) {
			t.Fatalf("remove: %v", err)
		}
		// Admit proves the FSM before it collects anything: an error that
		// says so, no decision, no change.
		c := startFakeCandidate(t, "c1")
		if d, err := g.Admit(ctx, c.candidate()); !errors.Is(err, ErrWrongFSM) || d != nil {
			t.Fatalf("admit with the wrong FSM: %v %+v, want ErrWrongFSM and no decision", err, d)
		}
		if len(f.changeCalls()) != 0 {
			t.Fatalf("membership changed: %+v", f.changeCalls())
		}
	})
	t.Run("closed", func(t *testing.T) {
		fsm := WrapFSM(nil)
		f := newFakeRaft(t, fsm)
		g, _ := newFakeGate(t, f, fsm)
		c := startFakeCandidate(t, "c1")
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if d, err := g.Admit(gateTestContext(t), c.candidate()); !errors.Is(err, ErrClosed) || d != nil {
			t.Fatalf("admit after close: %+v, %v", d, err)
		}
		if _, err := g.Remove(gateTestContext(t), "c1"); !errors.Is(err, ErrClosed) {
			t.Fatalf("remove after close: %v", err)
		}
		if n := f.observerCount(); n != 0 {
			t.Fatalf("%d observers left registered after close", n)
		}
	})
}

// --- Leadership observations ----------------------------------------------------------

// The gate starts leading on raft's observation, not only on its slow
// tick: with a tick of an hour, the leader's first duty (recording the
// cluster id) follows the Leader observation at once.
func TestGateObservationStartsLeading(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	f.stepDown("", "")
	g, _ := newFakeGate(t, f, fsm, WithStaging(Staging{Enabled: true, Interval: time.Hour, Deadline: time.Minute}))
	gateEventually(t, "the gate registers its observer", func() bool { return f.observerCount() == 1 })
	if id := g.Host().ClusterID(); id != "" {
		t.Fatalf("a follower recorded cluster id %q", id)
	}
	f.becomeLeader()
	gateEventually(t, "the new leader records a cluster id", func() bool { return g.Host().ClusterID() != "" })
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := f.observerCount(); n != 0 {
		t.Fatalf("%d observers left registered after close", n)
	}
}

// --- 7. The promoter follows leadership --------------------------------------------------

// Promotion rounds run only while this server leads: a follower's gate
// leaves a staged non-voter alone for many intervals; once leading again,
// and the candidate caught up with this leader's log, the promoter makes it
// a voter. The fake never replicates by itself, so the test sends the log
// to the candidate (replicateTo); min_healthy_ms is lowered to 60ms.
func TestGatePromoterStartsAndStopsWithLeadership(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	g, rec := newFakeGate(t, f, fsm, WithPolicies(fakeFastPolicies(t)))
	c := startFakeCandidate(t, "c1")
	d := fakeAdmitOK(t, g, c.candidate())
	admission := d.AdmissionID
	if admission == "" || d.Applied.Suffrage != facts.Nonvoter {
		t.Fatalf("admitted %+v, admission id %q", d.Applied, admission)
	}

	// Leading: rounds run. The candidate has heard from no leader (term
	// 0), so catch_up cannot be collected and it stays a non-voter.
	gateEventually(t, "a promotion round while leading", func() bool {
		_, ok := g.ProgressOf(admission)
		return ok
	})
	first, ok := rec.find("promotion", func(x *Decision) bool { return x.AdmissionID == admission })
	if !ok || first.Allowed || first.StoppedAt != "catch_up" {
		t.Fatalf("first promote decision %+v (%v), want a catch_up deny", first, ok)
	}

	// Following: the promoter stops, forgets its progress, runs no round.
	f.stepDown("n2", "127.0.0.1:7002")
	gateEventually(t, "the promoter forgets its progress", func() bool { return len(g.Progress()) == 0 })
	before := len(rec.all("promotion"))
	gateConsistently(t, 15*fakeInterval, "idle while following", func() bool {
		return len(g.Progress()) == 0 && len(rec.all("promotion")) == before && f.suffrage(c.id) == "Nonvoter"
	})

	// Leading again, at a new term, and the candidate has this leader's log.
	f.becomeLeader()
	f.replicateTo(t, c.id, c.addr())
	gateEventually(t, "the candidate is promoted", func() bool { return f.suffrage(c.id) == "Voter" })
	// The decision is recorded once the change and its metadata are done,
	// a moment after raft's configuration shows the voter.
	gateEventually(t, "the promotion is recorded", func() bool {
		_, ok := rec.find("promotion", func(x *Decision) bool { return x.Applied != nil })
		return ok
	})
	promoted, ok := rec.find("promotion", func(x *Decision) bool { return x.Applied != nil })
	if !ok || !promoted.Allowed || promoted.AdmissionID != admission || promoted.Applied.Suffrage != facts.Voter {
		t.Fatalf("promotion decision %+v (%v), want an applied allow of admission %s", promoted, ok, admission)
	}
	gateEventually(t, "the stage ends", func() bool { return len(g.Host().Staged()) == 0 })
}

// --- 8. Past the deadline ------------------------------------------------------------------

// A staged non-voter that dies is removed once its deadline passes: no
// longer in the configuration, no stage, no tombstone (it never voted).
func TestGateDeadlinePassedRemoves(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	g, rec := newFakeGate(t, f, fsm, WithStaging(Staging{Enabled: true, Deadline: 100 * time.Millisecond, Interval: fakeInterval}))
	c := startFakeCandidate(t, "c1")
	d := fakeAdmitOK(t, g, c.candidate())
	c.stop()

	gateEventually(t, "the expired non-voter is removed", func() bool { return f.suffrage(c.id) == "" })
	gateEventually(t, "the removal is recorded", func() bool { // after the change and its metadata
		_, ok := rec.find("promotion", func(x *Decision) bool { return x.Removed != nil })
		return ok
	})
	removed, ok := rec.find("promotion", func(x *Decision) bool { return x.Removed != nil })
	if !ok || removed.AdmissionID != d.AdmissionID || removed.Allowed || removed.Removed.Suffrage != facts.Nonvoter {
		t.Fatalf("removal decision %+v (%v)", removed, ok)
	}
	if !strings.Contains(removed.Reason, "not promoted within 100ms") {
		t.Fatalf("removal reason %q", removed.Reason)
	}
	var rm *changeCall
	for _, call := range f.changeCalls() {
		if call.Kind == "remove" {
			rm = &call
		}
	}
	if rm == nil || rm.ID != c.id || rm.Err != nil || rm.Index != removed.Removed.Index {
		t.Fatalf("remove call %+v, decision removed %+v", rm, removed.Removed)
	}
	gateEventually(t, "the stage ends", func() bool { return len(g.Host().Staged()) == 0 })
	if ts := g.Host().Tombstones(); len(ts) != 0 {
		t.Fatalf("tombstones %v after removing a staged non-voter", ts)
	}
}

// --- 9. A new leader carries on -----------------------------------------------------------

// The stage is replicated state: another server that becomes leader, with
// its own FSM fed the same log and a gate that never saw the admission,
// finds the staged member and promotes it under the same admission id.
func TestGateNewLeaderResumesStage(t *testing.T) {
	fsm1 := WrapFSM(nil)
	f1 := newFakeRaft(t, fsm1)
	pols := fakeFastPolicies(t)
	g1, _ := newFakeGate(t, f1, fsm1, WithPolicies(pols))
	c := startFakeCandidate(t, "c1")
	d := fakeAdmitOK(t, g1, c.candidate())
	stage1 := g1.Host().Staged()[c.id]

	// n2 takes over: it has the log, then the configuration moves from n1
	// to n2 (n2 added, n1 removed) before its gate starts.
	f1.stepDown("n2", "127.0.0.1:8")
	gateEventually(t, "the old leader's promoter stops", func() bool { return len(g1.Progress()) == 0 })
	fsm2 := WrapFSM(nil)
	f2 := newFakeRaftFrom(t, fsm2, f1.entries(), "n2", "127.0.0.1:8")
	_, servers := f2.configuration()
	servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:8"})
	f2.commitConfig(servers)
	f2.commitConfig(servers[1:]) // without n1, the first server
	if f2.suffrage(fakeLeaderID) != "" || f2.suffrage("n2") != "Voter" || f2.suffrage(c.id) != "Nonvoter" {
		t.Fatalf("n2's configuration: %v", servers[1:])
	}

	g2, rec2 := newFakeGate(t, f2, fsm2, WithLocalID("n2"), WithPolicies(pols))
	stage2, ok := g2.Host().Staged()[c.id]
	if !ok || stage2 != stage1 || stage2.AdmissionID != d.AdmissionID {
		t.Fatalf("n2 sees stage %+v (%v), n1 recorded %+v", stage2, ok, stage1)
	}
	gateEventually(t, "n2's promoter watches the staged member", func() bool {
		sp, ok := g2.ProgressOf(d.AdmissionID)
		return ok && sp.ID == c.id && sp.StagedAt.Equal(time.UnixMilli(stage1.StagedAtMS))
	})

	f2.replicateTo(t, c.id, c.addr())
	gateEventually(t, "n2 promotes the candidate", func() bool { return f2.suffrage(c.id) == "Voter" })
	gateEventually(t, "n2 records the promotion", func() bool { // a moment after the configuration
		_, ok := rec2.find("promotion", func(x *Decision) bool { return x.Applied != nil && x.Allowed })
		return ok
	})
	for _, x := range rec2.all("promotion") {
		if x.AdmissionID != d.AdmissionID || x.DecidedBy != "n2" {
			t.Fatalf("n2's promote decision %s: admission %q decided by %q, want %q by n2", x.DecisionID, x.AdmissionID, x.DecidedBy, d.AdmissionID)
		}
	}
	if _, ok := rec2.find("promotion", func(x *Decision) bool { return x.Applied != nil && x.Allowed }); !ok {
		t.Fatalf("no applied promotion among %+v", rec2.all("promotion"))
	}
	if f1.suffrage(c.id) != "Nonvoter" {
		t.Fatal("the old leader changed its configuration")
	}
}

// A promotion that races another configuration change is not applied; it
// is recorded as failed, and the next round promotes on fresh facts, at
// the new configuration index.
func TestGatePromotionRacedRetries(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	g, rec := newFakeGate(t, f, fsm, WithPolicies(fakeFastPolicies(t)))
	c := startFakeCandidate(t, "c1")
	d := fakeAdmitOK(t, g, c.candidate())

	f.raceNextAdds(1)
	f.replicateTo(t, c.id, c.addr())
	gateEventually(t, "the candidate is promoted", func() bool { return f.suffrage(c.id) == "Voter" })

	var voters []changeCall
	for _, call := range f.changeCalls() {
		if call.Kind == "add_voter" {
			voters = append(voters, call)
		}
	}
	if len(voters) != 2 || !voters[0].Raced || voters[0].Err == nil || voters[1].Err != nil || voters[1].PrevIndex <= voters[0].PrevIndex {
		t.Fatalf("add_voter calls %+v, want one raced, then one applied at a newer prevIndex", voters)
	}
	failed, ok := rec.find("promotion", func(x *Decision) bool { return x.Allowed && x.Applied == nil })
	if !ok || failed.AdmissionID != d.AdmissionID || !strings.Contains(failed.Reason, "not promoted (the next round tries again)") {
		t.Fatalf("failed promotion %+v (%v)", failed, ok)
	}
	gateEventually(t, "the promotion is recorded", func() bool {
		_, ok := rec.find("promotion", func(x *Decision) bool { return x.Applied != nil })
		return ok
	})
	done, ok := rec.find("promotion", func(x *Decision) bool { return x.Applied != nil })
	if !ok || done.AdmissionID != d.AdmissionID || done.ConfigIndex != voters[1].PrevIndex || done.Applied.Index != voters[1].Index {
		t.Fatalf("applied promotion %+v (%v), add %+v", done, ok, voters[1])
	}
	gateEventually(t, "the stage ends", func() bool { return len(g.Host().Staged()) == 0 })
}
