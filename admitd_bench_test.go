package admitd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// These benchmarks embed the gate the way a host does (README, examples/
// kvstore): the host's own FSM wrapped by WrapFSM, raft built by the host
// over a TCP transport, and admitd.New over that raft. Unlike
// raftglue/BenchmarkJoin (admitd's own node, raft-wal on disk, candidates
// serving /v1/state), everything here is hashicorp/raft with in-memory
// stores, and the candidates run raft only (no APIURL): what is measured
// is the gate's own cost on a host, not admitd's daemon.

// kvFSM is the host's application state: a map set by "key=value" entries.
type kvFSM struct {
	mu sync.Mutex
	m  map[string]string
}

func newKVFSM() *kvFSM { return &kvFSM{m: map[string]string{}} }

func (f *kvFSM) Apply(l *raft.Log) any {
	k, v, ok := strings.Cut(string(l.Data), "=")
	if !ok {
		return fmt.Errorf("entry %d: not key=value", l.Index)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[k] = v
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.m)
	return kvSnapshot(b), err
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = m
	return nil
}

type kvSnapshot []byte

func (s kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (kvSnapshot) Release() {}

// benchServer is one in-process hashicorp/raft server on 127.0.0.1 with
// in-memory log, stable and snapshot stores.
type benchServer struct {
	id    string
	addr  string
	r     *raft.Raft
	fsm   *admitd.FSM
	trans *raft.NetworkTransport
	once  sync.Once
}

func newBenchServer(b *testing.B, id string) *benchServer {
	b.Helper()
	logger := benchLogger(id)
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 2*time.Second, logger)
	if err != nil {
		b.Fatal(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.HeartbeatTimeout = testHeartbeatTimeout // example_test.go
	conf.ElectionTimeout = testElectionTimeout
	conf.LeaderLeaseTimeout = testLeaderLeaseTimeout
	conf.CommitTimeout = 2 * time.Millisecond
	conf.TrailingLogs = 32
	conf.SnapshotThreshold = 1 << 30 // snapshots are taken outside the timer, see settle
	conf.Logger = logger
	fsm := admitd.WrapFSM(newKVFSM())
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		_ = trans.Close()
		b.Fatal(err)
	}
	return &benchServer{id: id, addr: string(trans.LocalAddr()), r: r, fsm: fsm, trans: trans}
}

// benchLogger is raft's logger: none, unless ADMITD_BENCH_LOG names a
// level ("warn", "info", "debug").
func benchLogger(id string) hclog.Logger {
	level := os.Getenv("ADMITD_BENCH_LOG")
	if level == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.LevelFromString(level)})
}

func (s *benchServer) shutdown() {
	s.once.Do(func() {
		_ = s.r.Shutdown().Error()
		_ = s.trans.Close()
	})
}

func (s *benchServer) candidate() admitd.Candidate {
	return admitd.Candidate{ID: s.id, RaftAddr: s.addr} // raft only: no APIURL
}

// hostCluster is a 3-voter host cluster with a gate on its leader.
type hostCluster struct {
	leader  *benchServer
	voters  []*benchServer
	gate    *admitd.Gate
	seq     int
	live    map[*benchServer]bool // candidates not shut down yet
	snapped uint64                // leader's last index at the last snapshot round
}

// newHostCluster bootstraps h1 alone, adds h2 and h3 with bare AddVoter
// calls (so h1 leads), and builds the gate on h1 with opts.
func newHostCluster(b *testing.B, opts ...admitd.Option) *hostCluster {
	b.Helper()
	h1 := newBenchServer(b, "h1")
	b.Cleanup(h1.shutdown)
	boot := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(h1.id), Address: raft.ServerAddress(h1.addr)}}}
	if err := h1.r.BootstrapCluster(boot).Error(); err != nil {
		b.Fatal(err)
	}
	waitFor(b, "h1 leads", func() bool { return h1.r.State() == raft.Leader })
	cl := &hostCluster{leader: h1, voters: []*benchServer{h1}, live: map[*benchServer]bool{}}
	for _, id := range []string{"h2", "h3"} {
		s := newBenchServer(b, id)
		b.Cleanup(s.shutdown)
		if err := h1.r.AddVoter(raft.ServerID(s.id), raft.ServerAddress(s.addr), 0, 0).Error(); err != nil {
			b.Fatal(err)
		}
		cl.voters = append(cl.voters, s)
	}
	gate, err := admitd.New(h1.r, h1.fsm, append([]admitd.Option{admitd.WithLocalID(h1.id)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gate.Close() }) // runs before the voters' shutdowns (LIFO)
	// Candidates still running (a failed iteration, the dry runs' one) go
	// first. The removed ones are shut down by remove and not kept, so
	// hundreds of dead servers do not grow the heap the GC scans.
	b.Cleanup(func() {
		for c := range cl.live {
			c.shutdown()
		}
	})
	cl.gate = gate
	// The gate records a cluster id once it sees it leads: wait for it, so
	// no iteration pays for it.
	waitFor(b, "cluster id recorded", func() bool { return gate.Host().ClusterID() != "" })
	cl.settle(b)
	return cl
}

// candidate starts a fresh, never-bootstrapped raft server.
func (cl *hostCluster) candidate(b *testing.B) *benchServer {
	cl.seq++
	c := newBenchServer(b, fmt.Sprintf("c%d", cl.seq))
	cl.live[c] = true
	return c
}

// remove takes c out of the configuration and shuts it down.
func (cl *hostCluster) remove(b *testing.B, c *benchServer) {
	b.Helper()
	if err := cl.leader.r.RemoveServer(raft.ServerID(c.id), 0, 0).Error(); err != nil {
		b.Fatalf("remove %s: %v", c.id, err)
	}
	c.shutdown()
	delete(cl.live, c)
}

// settle brings the cluster back to its steady state between iterations:
// the leader's FSM has applied every configuration (so the gate's
// committed-configuration read finds it current, as it does long after
// the last change), every voter is healthy in the leader's term, and the
// log is kept short with a snapshot round every 128 entries (a fresh
// candidate then receives a small snapshot and a bounded tail, and late
// iterations do not replicate a longer log than early ones).
func (cl *hostCluster) settle(b *testing.B) {
	b.Helper()
	if err := cl.leader.r.Barrier(0).Error(); err != nil {
		b.Fatal(err)
	}
	if cl.leader.r.State() != raft.Leader {
		b.Fatalf("h1 lost the leadership%s", leaderHint(admitd.ErrNotLeader))
	}
	term := cl.leader.r.CurrentTerm()
	waitFor(b, "followers in the leader's term and caught up", func() bool {
		for _, s := range cl.voters[1:] {
			if s.r.CurrentTerm() != term || s.r.AppliedIndex() < cl.leader.r.AppliedIndex() {
				return false
			}
		}
		return true
	})
	if last := cl.leader.r.LastIndex(); last-cl.snapped > 128 {
		for _, s := range cl.voters {
			waitFor(b, s.id+" snapshot", func() bool {
				// A follower refuses while a configuration entry it has
				// committed is not yet applied: ask again.
				err := s.r.Snapshot().Error()
				return err == nil || errors.Is(err, raft.ErrNothingNewToSnapshot)
			})
		}
		cl.snapped = last
	}
}

// leaderHint explains a lost leadership: with 100ms timeouts, a stall of
// the whole process past the leader lease (another job taking both cores)
// makes h1 step down. Run again on a quieter machine.
func leaderHint(err error) string {
	if errors.Is(err, admitd.ErrNotLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return " (h1 stepped down: the process stalled past the 100ms leader lease, likely an overloaded machine; run again)"
	}
	return ""
}

func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// sectionTimes is the collectors' own timing in a decision's facts.
type sectionTimes struct {
	Reachability struct {
		DurationMS float64 `json:"duration_ms"`
	} `json:"reachability"`
	InitState struct {
		DurationMS float64 `json:"duration_ms"`
	} `json:"init_state"`
	Topology struct {
		DurationMS float64 `json:"duration_ms"`
	} `json:"topology"`
}

// collectMS is the wall time of fact collection: the sections run at
// once, so the slowest of them.
func collectMS(b *testing.B, d *admitd.Decision) float64 {
	var st sectionTimes
	if err := json.Unmarshal(d.Facts, &st); err != nil {
		b.Fatalf("decision facts: %v", err)
	}
	return max(st.Reachability.DurationMS, st.InitState.DurationMS, st.Topology.DurationMS)
}

// decisionError says why a decision denied, for b.Fatalf.
func decisionError(d *admitd.Decision) string {
	codes := []string{}
	for _, st := range d.Stages {
		for _, v := range st.Deny {
			codes = append(codes, st.Name+":"+v.Code)
		}
	}
	return fmt.Sprintf("stopped at %q (%s): %s", d.StoppedAt, strings.Join(codes, ", "), d.Reason)
}

// timings keeps per-iteration durations for medians next to ns/op, which
// is a mean and moves with the odd slow iteration (GC, a late heartbeat).
type timings []time.Duration

func (t timings) p50() time.Duration {
	if len(t) == 0 {
		return 0
	}
	s := slices.Clone(t)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// baseline stashes the first sub-benchmark's result for the second's ratio.
type baseline struct{ nsPerOp, p50 float64 }

func (bl *baseline) stash(b *testing.B, t timings) {
	*bl = baseline{nsPerOp: float64(b.Elapsed().Nanoseconds()) / float64(b.N), p50: float64(t.p50())}
}

// report adds name (the mean ratio, ns/op over ns/op) and p50-name (the
// ratio of medians) when the baseline ran in this process.
func (bl *baseline) report(b *testing.B, t timings, name string) {
	if bl.nsPerOp == 0 {
		b.Logf("run the baseline sub-benchmark first for %s", name)
		return
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/bl.nsPerOp, name)
	b.ReportMetric(float64(t.p50())/bl.p50, "p50-"+name)
}

// BenchmarkGateOnHost adds a fresh raft-only candidate as a voter to a
// 3-voter host cluster, one per iteration, two ways on the same cluster:
//
//   - bare: r.AddVoter(id, addr, 0, 0).Error(), what the host does
//     without admitd;
//   - gate: gate.Admit with WithStaged(false): facts (three TCP
//     handshakes and the raft probe of the candidate, the committed
//     configuration, a raft probe of each follower), the policy stages,
//     a last handshake, then AddVoter with the configuration index as
//     prevIndex.
//
// Outside the timer each candidate is started before its add, removed and
// shut down after it, and the cluster settles (settle), so every add sees
// 3 voters. bare runs first; gate reports x_bare (its ns/op over bare's)
// and p50-x_bare (ratio of medians). raft-entries/op is how far the
// leader's log grew during the timed call (1: the configuration entry
// alone; a barrier or a metadata commit would add one each).
func BenchmarkGateOnHost(b *testing.B) {
	// The before-add hook only notes the time: it splits the gate's call
	// into deciding (facts, evaluation, the last handshake) and adding
	// (host.AddVoter and the decision's record).
	var addStart time.Time
	noteAdd := admitd.WithBeforeAdd(func(context.Context, *admitd.Decision) error {
		addStart = time.Now()
		return nil
	})
	cl := newHostCluster(b, admitd.WithStaged(false), noteAdd)
	ctx := context.Background()
	var bare baseline
	run := func(b *testing.B, add func(c *benchServer) (*admitd.Decision, error)) timings {
		b.ReportAllocs()
		b.StopTimer()
		var t timings
		var entries uint64
		var collect, eval, decide, adding float64
		for i := 0; i < b.N; i++ {
			c := cl.candidate(b)
			before := cl.leader.r.LastIndex()
			b.StartTimer()
			start := time.Now()
			d, err := add(c)
			end := time.Now()
			b.StopTimer()
			if err != nil {
				b.Fatalf("add %s: %v%s", c.id, err, leaderHint(err))
			}
			if d != nil {
				if !d.Allowed || d.Applied == nil {
					b.Fatalf("gate denied %s: %s", c.id, decisionError(d))
				}
				collect += collectMS(b, d)
				eval += d.EvalMS
				decide += ms(addStart.Sub(start))
				adding += ms(end.Sub(addStart))
			}
			entries += cl.leader.r.LastIndex() - before
			t = append(t, end.Sub(start))
			cl.remove(b, c)
			cl.settle(b)
		}
		b.ReportMetric(float64(entries)/float64(b.N), "raft-entries/op")
		b.ReportMetric(ms(t.p50()), "p50-ms")
		if collect > 0 {
			n := float64(b.N)
			b.ReportMetric(collect/n, "collect-ms")
			b.ReportMetric(eval/n, "eval-ms")
			b.ReportMetric(decide/n, "decide-ms")
			b.ReportMetric(adding/n, "add-ms")
		}
		return t
	}
	b.Run("bare", func(b *testing.B) {
		t := run(b, func(c *benchServer) (*admitd.Decision, error) {
			return nil, cl.leader.r.AddVoter(raft.ServerID(c.id), raft.ServerAddress(c.addr), 0, 0).Error()
		})
		bare.stash(b, t)
	})
	b.Run("gate", func(b *testing.B) {
		t := run(b, func(c *benchServer) (*admitd.Decision, error) {
			return cl.gate.Admit(ctx, c.candidate())
		})
		bare.report(b, t, "x_bare")
	})
}

// BenchmarkDryRunAgainstRaftFloor compares a dry-run admission of a
// fresh raft-only candidate with the least a client must do to learn the
// same about it without admitd:
//
//   - floor: facts.ProbeRaftRPC (one dial and one pre-vote round trip; a
//     fresh server grants it at term 0 and the probe stops there), then a
//     net.Dial and Close of the same address;
//   - dryrun: gate.AdmitRequest(ctx, Request{Candidate: c, DryRun: true})
//     on the leader of a 3-voter host cluster.
//
// Both ask the same candidate, never bootstrapped; neither changes it (the
// pre-vote persists nothing, and the dry-run adds nobody), which the
// benchmark checks at the end. floor runs first; dryrun reports x_floor
// (its ns/op over floor's) and p50-x_floor.
func BenchmarkDryRunAgainstRaftFloor(b *testing.B) {
	cl := newHostCluster(b, admitd.WithStaged(false))
	c := cl.candidate(b)
	ctx := context.Background()
	var floor baseline
	run := func(b *testing.B, once func() error) timings {
		b.ReportAllocs()
		var t timings
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if err := once(); err != nil {
				b.Fatalf("%v%s", err, leaderHint(err))
			}
			t = append(t, time.Since(start))
		}
		b.StopTimer()
		b.ReportMetric(ms(t.p50()), "p50-ms")
		return t
	}
	b.Run("floor", func(b *testing.B) {
		t := run(b, func() error {
			a := facts.ProbeRaftRPC(ctx, c.addr)
			if !a.Answered || !a.Granted || a.Term != 0 || a.ID != c.id {
				return fmt.Errorf("probe of a fresh server: %+v", a)
			}
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				return err
			}
			return conn.Close()
		})
		floor.stash(b, t)
	})
	b.Run("dryrun", func(b *testing.B) {
		var collect, eval float64
		before := cl.leader.r.LastIndex()
		t := run(b, func() error {
			d, err := cl.gate.AdmitRequest(ctx, admitd.Request{Candidate: c.candidate(), DryRun: true})
			if err != nil {
				return err
			}
			if !d.Allowed || d.Applied != nil {
				return fmt.Errorf("dry run of %s: allowed=%v applied=%v: %s", c.id, d.Allowed, d.Applied, decisionError(d))
			}
			collect += collectMS(b, d)
			eval += d.EvalMS
			return nil
		})
		b.ReportMetric(collect/float64(b.N), "collect-ms")
		b.ReportMetric(eval/float64(b.N), "eval-ms")
		b.ReportMetric(float64(cl.leader.r.LastIndex()-before)/float64(b.N), "raft-entries/op")
		floor.report(b, t, "x_floor")
	})
	if c.r.CurrentTerm() != 0 || c.r.LastIndex() != 0 {
		b.Fatalf("the candidate changed: term %d, last index %d", c.r.CurrentTerm(), c.r.LastIndex())
	}
	f := cl.leader.r.GetConfiguration()
	if err := f.Error(); err != nil {
		b.Fatal(err)
	}
	if n := len(f.Configuration().Servers); n != 3 {
		b.Fatalf("the dry runs changed the configuration: %d servers", n)
	}
}

// BenchmarkGatePathParts times, one at a time and on the cluster and
// candidate of BenchmarkDryRunAgainstRaftFloor, the pieces a dry-run
// admission of a raft-only candidate is made of, so the docs can say where
// its time goes. Gather runs its sections at once: its time is that of
// the slowest, not the sum.
//
//   - dial3: the reachability section's three concurrent TCP handshakes;
//   - probe-candidate: facts.ProbeRaftRPC of the fresh candidate (dial and
//     pre-vote);
//   - probe-follower: the same of a follower (dial, pre-vote, then the
//     term-0 AppendEntries that reports its last index), which the
//     topology section does for each follower that serves no /v1/state;
//   - cluster-config: the committed configuration as the topology reads it;
//   - gather: facts.Gather, everything above at once;
//   - evaluate: admission.InputFromDocument and Engine.Evaluate of one
//     gathered document, back to back;
//   - evaluate-fixture: Engine.Evaluate of the decoded document of
//     testdata/scenarios/allow-2-to-3 (an admitd candidate with an API),
//     what admission's BenchmarkEvaluate measures: it ties this machine
//     and policy set to that benchmark's numbers.
func BenchmarkGatePathParts(b *testing.B) {
	cl := newHostCluster(b, admitd.WithStaged(false))
	c := cl.candidate(b)
	ctx := context.Background()
	follower := cl.voters[1].addr
	host := cl.gate.Host()
	b.Run("dial3", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					conn, err := net.Dial("tcp", c.addr)
					if err != nil {
						b.Error(err)
						return
					}
					conn.Close()
				})
			}
			wg.Wait()
		}
	})
	b.Run("probe-candidate", func(b *testing.B) {
		for b.Loop() {
			if a := facts.ProbeRaftRPC(ctx, c.addr); !a.Answered {
				b.Fatal(a.Error)
			}
		}
	})
	b.Run("probe-follower", func(b *testing.B) {
		for b.Loop() {
			if a := facts.ProbeRaftRPC(ctx, follower); !a.Answered || !a.LastIndexKnown {
				b.Fatalf("%+v", a)
			}
		}
	})
	b.Run("cluster-config", func(b *testing.B) {
		for b.Loop() {
			if _, err := host.ClusterConfig(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			facts.Gather(ctx, facts.CollectConfig{}, c.candidate(), host)
		}
	})
	doc := facts.Gather(ctx, facts.CollectConfig{}, c.candidate(), host)
	doc.Change = facts.ChangeAddVoter // as the gate sets it, unstaged
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			in, err := admission.InputFromDocument(doc)
			if err != nil {
				b.Fatal(err)
			}
			if d := cl.gate.Engine().Evaluate(ctx, in); !d.Allowed {
				b.Fatalf("denied: %s", decisionError(d))
			}
		}
	})
	b.Run("evaluate-fixture", func(b *testing.B) {
		raw, err := os.ReadFile("testdata/scenarios/allow-2-to-3/facts.json")
		if err != nil {
			b.Fatal(err)
		}
		dec, err := facts.DecodeBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		in, err := admission.NewInput(dec)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if d := cl.gate.Engine().Evaluate(ctx, in); !d.Allowed {
				b.Fatalf("denied: %s", decisionError(d))
			}
		}
	})
}
