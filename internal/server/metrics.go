package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/admitd/admitd/internal/version"
	"github.com/admitd/admitd/raftglue"
)

// metrics is one registry per server, so tests can run several nodes. The
// gate registers its own series (decisions, denies, collectors, changes)
// on it, and the daemon adds raft's own (docs/metrics.md).
type metrics struct {
	reg *prometheus.Registry
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	return m
}

// buildInfo is admitd_build_info: 1, labelled with what this binary is,
// so a dashboard can tell which nodes run which build.
func buildInfo() prometheus.Collector {
	b := version.Info()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "admitd_build_info", Help: "1, labelled with the release version, the module version and commit the binary was built from, and its Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "module": b.Module, "commit": b.Commit, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// Registry is the registry GET /metrics serves, for the daemon to add
// raft's series to.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observeRaft exports the node's raft state as a gauge per state name.
func (m *metrics) observeRaft(n *raftglue.Node) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "admitd_raft_leader", Help: "1 when this node is the raft leader.",
	}, func() float64 {
		if n.IsLeader() {
			return 1
		}
		return 0
	}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "admitd_raft_last_index", Help: "Last raft log index on this node.",
	}, func() float64 { return float64(n.LastIndex()) }))
}
