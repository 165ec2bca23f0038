package raftglue

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// benchNode is a node of the join benchmark with a minimal /v1/state API,
// so fact collection probes it as it would a real admitd.
type benchNode struct {
	*Node
	api *http.Server
}

// serveState is GET /v1/state as internal/server serves it (the fields the
// collectors read), for a node of this package's benchmark.
func serveState(n *Node) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(facts.NodeState{
			NodeID: n.ID(), RaftAddr: n.Addr(), APIURL: n.APIURL(),
			Initialized: n.Initialized(), ClusterID: n.ClusterID(),
			LastIndex: n.LastIndex(), LastTerm: n.LastTerm(), Term: n.Term(),
			RaftState: n.State(), LeaderID: n.LeaderID(), Version: "bench",
		})
	}
}

// startBenchNode opens a node with raft's default (LAN) timings, as
// `admitd serve` runs it, and serves its state on a free loopback port.
func startBenchNode(b *testing.B, id string) *benchNode {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "admitd-join-bench-")
	if err != nil {
		b.Fatal(err)
	}
	n, err := Open(Config{
		ID: id, RaftAddr: "127.0.0.1:0", APIURL: "http://" + ln.Addr().String(),
		DataDir: dir, Logger: benchLogger(id),
	})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", serveState(n))
	bn := &benchNode{Node: n, api: &http.Server{Handler: mux}}
	go func() { _ = bn.api.Serve(ln) }()
	return bn
}

func (bn *benchNode) stop() {
	_ = bn.api.Close()
	_ = bn.Shutdown()
	_ = os.RemoveAll(bn.cfg.DataDir)
}

func (bn *benchNode) candidate() facts.Candidate {
	return facts.Candidate{ID: bn.ID(), RaftAddr: bn.Addr(), APIURL: bn.APIURL()}
}

// BenchmarkJoin measures, on one 3-voter cluster and alternating in every
// iteration, ways to make a fresh node a voter:
//
//   - gated: what POST /v1/admissions does on the leader, without the HTTP
//     framing: collect the facts (facts.Gather), evaluate the shipped
//     policies (Engine.Evaluate), then Node.AddVoter with the Grant, which
//     also records the candidate's API URL in the FSM;
//   - bare: hashicorp/raft's AddVoter alone, with the current
//     configuration index as prevIndex, as a controller without admitd
//     would call it;
//   - ungated: what Node.AddVoter does once granted (raft's AddVoter, then
//     the candidate's API URL recorded through the log), without facts or
//     evaluation: it splits the gated join's cost between the admission
//     and the recording of the URL.
//
// Each candidate is a fresh node (opened outside the timed part) and is
// removed again after its join, so every join sees the same cluster. The
// raft handle is not exported: this benchmark lives in the package so the
// bare call stays out of other packages' reach. It reports medians and
// 90th percentiles in ms and their ratio; cmd `make bench` prints them.
func BenchmarkJoin(b *testing.B) {
	ctx := context.Background()
	engine, err := admission.Load(ctx, admission.DirSource("../policies"))
	if err != nil {
		b.Fatal(err)
	}
	leader := startBenchNode(b, "m1")
	defer leader.stop()
	if err := leader.Bootstrap(ctx); err != nil {
		b.Fatal(err)
	}
	for _, id := range []string{"m2", "m3"} {
		m := startBenchNode(b, id)
		defer m.stop()
		cc, err := leader.ClusterConfig(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := leader.addVoter(ctx, m.ID(), m.Addr(), m.APIURL(), cc.Index); err != nil {
			b.Fatal(err)
		}
	}
	var gated, ungated, bare []time.Duration
	var parts [3][]time.Duration // gated: collect, evaluate, AddVoter with the grant
	seq := 0
	join := func(how string) {
		seq++
		cand := startBenchNode(b, fmt.Sprintf("c%d", seq))
		defer cand.stop()
		waitHealthy(b, leader, 3)
		b.StartTimer()
		start := time.Now()
		switch how {
		case "gated":
			doc := facts.Gather(ctx, facts.CollectConfig{}, cand.candidate(), leader)
			collected := time.Now()
			in, err := admission.InputFromDocument(doc)
			if err != nil {
				b.Fatal(err)
			}
			d := engine.Evaluate(ctx, in)
			g, ok := d.Grant()
			if !ok {
				b.Fatalf("gated join of %s denied: %s", cand.ID(), d.Reason)
			}
			decided := time.Now()
			if _, err := leader.AddVoter(ctx, g); err != nil {
				b.Fatal(err)
			}
			gated = append(gated, time.Since(start))
			parts[0] = append(parts[0], collected.Sub(start))
			parts[1] = append(parts[1], decided.Sub(collected))
			parts[2] = append(parts[2], time.Since(decided))
		case "bare":
			cc, err := leader.ClusterConfig(ctx)
			if err != nil {
				b.Fatal(err)
			}
			f := leader.raft.AddVoter(raft.ServerID(cand.ID()), raft.ServerAddress(cand.Addr()), cc.Index, 10*time.Second)
			if err := f.Error(); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, time.Since(start))
		case "ungated":
			cc, err := leader.ClusterConfig(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := leader.addVoter(ctx, cand.ID(), cand.Addr(), cand.APIURL(), cc.Index); err != nil {
				b.Fatal(err)
			}
			ungated = append(ungated, time.Since(start))
		}
		b.StopTimer()
		cc, err := leader.ClusterConfig(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := leader.removeServer(ctx, cand.ID(), cc.Index, opTombstone); err != nil {
			b.Fatal(err)
		}
		if err := leader.ClearTombstone(ctx, cand.ID()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	kinds := []string{"gated", "ungated", "bare"}
	for i := 0; i < b.N; i++ {
		// Rotate which goes first, so none always follows the same one.
		for k := range kinds {
			join(kinds[(i+k)%len(kinds)])
		}
	}
	g50, b50 := quantile(gated, 0.5), quantile(bare, 0.5)
	b.ReportMetric(ms(g50), "gated-p50-ms")
	b.ReportMetric(ms(b50), "bare-p50-ms")
	b.ReportMetric(ms(quantile(gated, 0.9)), "gated-p90-ms")
	b.ReportMetric(ms(quantile(bare, 0.9)), "bare-p90-ms")
	b.ReportMetric(float64(g50)/float64(b50), "gated/bare-p50")
	b.ReportMetric(ms(quantile(ungated, 0.5)), "ungated-p50-ms")
	for i, name := range []string{"collect", "evaluate", "add"} {
		b.ReportMetric(ms(quantile(parts[i], 0.5)), "gated-"+name+"-p50-ms")
	}
}

// waitHealthy waits until the leader's topology shows want healthy voters,
// so a join never starts while the previous removal is still settling.
func waitHealthy(b *testing.B, leader *benchNode, want int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		t := facts.GatherTopology(context.Background(), facts.CollectConfig{}, leader)
		healthy := 0
		for _, s := range t.Servers {
			if s.Suffrage == facts.Voter && s.Healthy {
				healthy++
			}
		}
		if t.Collected && healthy == want && len(t.Servers) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("cluster did not settle at %d healthy voters", want)
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func benchLogger(id string) hclog.Logger {
	if os.Getenv("RAFTGLUE_TEST_LOG") == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Info})
}
