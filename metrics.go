package admitd

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
)

// metrics are the gate's own series, registered on the host's registerer.
type metrics struct {
	decisions  *prometheus.CounterVec
	denies     *prometheus.CounterVec
	evalSecs   prometheus.Histogram
	collectSec *prometheus.HistogramVec
	changes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, host *raftglue.Host) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_decisions_total", Help: "Decisions by outcome.",
		}, []string{"outcome"}),
		denies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_denies_total", Help: "Denies by stage and code.",
		}, []string{"stage", "code"}),
		evalSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "admitd_evaluation_duration_seconds", Help: "Policy evaluation time per decision.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		collectSec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "admitd_collector_duration_seconds", Help: "Fact collection time per collector.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"collector", "collected"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_configuration_changes_total", Help: "Membership changes by result.",
		}, []string{"result"}),
	}
	staged := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "admitd_staged_nonvoters", Help: "Non-voters admitted in stage and not yet promoted, as replicated to this node.",
	}, func() float64 { return float64(len(host.Staged())) })
	for _, c := range []prometheus.Collector{m.decisions, m.denies, m.evalSecs, m.collectSec, m.changes, staged} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("a gate's metrics are registered once per registerer"), err)
		}
	}
	return m, nil
}

func (m *metrics) observeDecision(d *Decision) {
	outcome := "deny"
	if d.Allowed {
		outcome = "allow"
	}
	m.decisions.WithLabelValues(outcome).Inc()
	m.evalSecs.Observe(d.EvalMS / 1000)
	for _, s := range d.Stages {
		for _, v := range s.Deny {
			m.denies.WithLabelValues(s.Name, v.Code).Inc()
		}
	}
}

func (m *metrics) observeFacts(doc *facts.Document) {
	obs := func(name string, s *facts.Section) {
		if s == nil {
			return
		}
		label := "false"
		if s.Collected {
			label = "true"
		}
		m.collectSec.WithLabelValues(name, label).Observe(s.DurationMS / 1000)
	}
	if doc.Reachability != nil {
		obs("reachability", &doc.Reachability.Section)
	}
	if doc.InitState != nil {
		obs("init_state", &doc.InitState.Section)
	}
	if doc.CatchUp != nil {
		obs("catch_up", &doc.CatchUp.Section)
	}
	if doc.Topology != nil {
		obs("topology", &doc.Topology.Section)
	}
}

func (m *metrics) configChange(result string) { m.changes.WithLabelValues(result).Inc() }
