package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/internal/testutil"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// raftSinkProblems are what promlint says of raft's own names, which the
// go-metrics sink exports as raft emits them (commitTime, rpcType, counters
// without _total) so that raft's and Consul's documentation and dashboards
// apply as written. Only these, and only on raft's series, are accepted.
var raftSinkProblems = []string{
	"metric names should be written in 'snake_case' not 'camelCase'",
	"label names should be written in 'snake_case' not 'camelCase'",
	`counter metrics should have "_total" suffix`,
}

func metricsOf(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := testClient.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, b)
	}
	return b
}

// raftFamilies are the names the subscribed raft sinks export now.
func raftFamilies(t *testing.T) map[string]bool {
	t.Helper()
	raftSinks.mu.RLock()
	sinks := slices.Clone(raftSinks.sinks)
	raftSinks.mu.RUnlock()
	out := map[string]bool{}
	for _, s := range sinks {
		reg := prometheus.NewRegistry()
		reg.MustRegister(s.(prometheus.Collector))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			out[mf.GetName()] = true
		}
	}
	return out
}

func metricsNode(t *testing.T, id string) Config {
	policies, _ := filepath.Abs("../../policies")
	return Config{
		ID: id, RaftAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), DataDir: t.TempDir(), Policies: policies,
		JoinTimeout: 30 * time.Second,
		Logger:      hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: os.Stderr}),
		Raft:        testRaft,
	}
}

// Two daemons in one process (each subscribes its registry to the one
// go-metrics global) serve raft's metrics beside admitd's; after an
// admission, promlint finds nothing on n1's /metrics but raft's own names.
func TestMetricsLintAndRaftSeries(t *testing.T) {
	before := subscribed()
	n1 := metricsNode(t, "n1")
	n1.Bootstrap = true
	runNode(t, &n1)
	n2 := metricsNode(t, "n2")
	n2.Join = []string{"http://" + n1.HTTPAddr}
	runNode(t, &n2)
	url1, url2 := "http://"+n1.HTTPAddr, "http://"+n2.HTTPAddr
	waitFor(t, "n2 admitted and replicating", func() bool {
		resp, err := testClient.Get(url2 + "/v1/state")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Initialized bool }
		if json.NewDecoder(resp.Body).Decode(&st) != nil || !st.Initialized {
			return false
		}
		m := metricsOf(t, url1) // the lease check's sample comes once n2 votes
		return bytes.Contains(m, []byte(`admitd_raft_replication_appendEntries_rpc_count{peer_id="n2"}`)) &&
			bytes.Contains(m, []byte("admitd_raft_leader_lastContact_count "))
	})
	if n := subscribed(); n != before+2 {
		t.Fatalf("%d raft sinks subscribed, want %d", n, before+2)
	}

	m1 := metricsOf(t, url1)
	for _, want := range []string{
		`admitd_decisions_total{outcome="allow",via="admission"} 1`,
		`admitd_build_info{`,
		`admitd_raft_commitTime_count `,
		`admitd_raft_leader_lastContact_count `,
		`admitd_raft_fsm_applyBatch_count `, // admitd's FSM wrapper batches
		`admitd_raft_apply `,
		`admitd_raft_state_leader `,
		`admitd_raft_peers 2`,
	} {
		if !bytes.Contains(m1, []byte(want)) {
			t.Errorf("n1's /metrics lack %s", want)
		}
	}
	// raft 1.8 names each per-peer series twice; the name with the peer's
	// id in it is blocked.
	if bytes.Contains(m1, []byte("admitd_raft_replication_heartbeat_n2")) || bytes.Contains(m1, []byte("admitd_raft_replication_appendEntries_rpc_n2")) {
		t.Error("n1 exports raft's legacy per-peer names")
	}
	// The runtime's metrics are client_golang's go_*, not go-metrics' too.
	if bytes.Contains(m1, []byte("admitd_runtime_")) {
		t.Error("go-metrics' runtime metrics duplicate the Go collector's")
	}
	if !bytes.Contains(metricsOf(t, url2), []byte("admitd_raft_commitTime")) {
		t.Error("n2's /metrics have no raft series")
	}

	problems, err := promlint.New(bytes.NewReader(m1)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	raft := raftFamilies(t)
	if !raft["admitd_raft_commitTime"] {
		t.Fatalf("the raft sinks export %v, no commitTime", raft)
	}
	filtered := 0
	for _, p := range problems {
		if raft[p.Metric] && slices.Contains(raftSinkProblems, p.Text) {
			filtered++
			continue
		}
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if filtered == 0 {
		t.Error("no raft naming problem was filtered: drop the filter")
	}

	// Every raft series exported is documented.
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range raft {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/metrics.md does not list %s", name)
		}
	}
}

// subscribed is how many raft sinks are subscribed.
func subscribed() int {
	raftSinks.mu.RLock()
	defer raftSinks.mu.RUnlock()
	return len(raftSinks.sinks)
}

// A daemon that stops unsubscribes its sink, and one started after it
// in the same process serves raft metrics again (go-metrics' global is set
// once).
func TestRaftSinkUnsubscribes(t *testing.T) {
	before := subscribed()
	for range 2 {
		cfg := metricsNode(t, "n1")
		cfg.Bootstrap = true
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg) }()
		url := "http://" + cfg.HTTPAddr
		waitFor(t, "raft metrics", func() bool {
			resp, err := testClient.Get(url + "/metrics")
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.Contains(string(b), "admitd_raft_state_leader ")
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := subscribed(); n != before {
			t.Fatalf("%d sinks after the daemon stopped, want %d", n, before)
		}
	}
}
