package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/admitd/admitd/raftglue"
)

// metrics is one registry per server, so tests can run several nodes. The
// gate registers its own series (decisions, denies, collectors, changes)
// on it.
type metrics struct {
	reg *prometheus.Registry
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

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
