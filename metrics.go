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
			Name: "admitd_decisions_total", Help: "Decisions by source (via: admission, promotion, removal, evaluate, dry_run) and outcome.",
		}, []string{"via", "outcome"}),
		denies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_denies_total", Help: "Deny entries by source (via), stage and code.",
		}, []string{"via", "stage", "code"}),
		evalSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "admitd_evaluation_duration_seconds", Help: "Policy evaluation time per decision, every via.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		collectSec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "admitd_collector_duration_seconds", Help: "Fact collection time per collector (reachability, init_state, catch_up, topology) and whether it collected, for admissions, promotions and removals.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"collector", "collected"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_configuration_changes_total", Help: "Membership changes by result: applied, configuration_changed, leadership_lost, failed, candidate_refused, promoted, promotion_failed, demoted, removed.",
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

// The via label of the decision metrics: where a decision came from.
// /v1/evaluate and Gate.Evaluate are open to anyone who reaches the API,
// so their decisions must not count as admissions; a dry run changes
// nothing, so its denies refuse no one.
const (
	ViaAdmission = "admission" // Gate.Admit, POST /v1/admissions, enforced
	ViaPromotion = "promotion" // the promote phase of a staged admission
	ViaRemoval   = "removal"   // Gate.Remove, Gate.Demote, enforced
	ViaEvaluate  = "evaluate"  // Gate.Evaluate, POST /v1/evaluate
	ViaDryRun    = "dry_run"   // an admission or removal decided with DryRun (or by a dry-run gate)
)

// MetricVia is the via label of d, which the decision hook (WithDecisionHook)
// saw with via: via itself, except ViaDryRun for an admission or removal
// that was not enforced. The hook and the decision log keep the raw via
// with the decision's "enforced" field; hosts counting decisions in their
// own metrics label them with this to match admitd's.
func MetricVia(d *Decision, via string) string {
	if (via == ViaAdmission || via == ViaRemoval) && !d.Enforced {
		return ViaDryRun
	}
	return via
}

func (m *metrics) observeDecision(d *Decision, via string) {
	outcome := "deny"
	if d.Allowed {
		outcome = "allow"
	}
	via = MetricVia(d, via)
	m.decisions.WithLabelValues(via, outcome).Inc()
	m.evalSecs.Observe(d.EvalMS / 1000)
	for _, s := range d.Stages {
		for _, v := range s.Deny {
			m.denies.WithLabelValues(via, s.Name, v.Code).Inc()
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
