package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/version"
)

// Errors of the operations endpoints.
var (
	ErrDryRunMode        = errors.New("dry-run mode")
	ErrReloadUnavailable = errors.New("policy reload is not available on this server")
)

// Modes of a node, as --mode takes them.
const (
	ModeEnforce = "enforce"
	ModeDryRun  = "dry-run"
)

// ops holds what operators use beyond the contract's API: reloads, the
// decision log and the metrics that go with them.
type ops struct {
	s        *Server
	reloadMu sync.Mutex // one reload at a time
	last     atomic.Pointer[ReloadResult]

	reloads       *prometheus.CounterVec
	lastSuccess   prometheus.Gauge
	policyInfo    *prometheus.GaugeVec
	stageOutcomes *prometheus.CounterVec
	warns         *prometheus.CounterVec
	logEvents     *prometheus.CounterVec
}

func newOps(s *Server) *ops {
	o := &ops{
		s: s,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_policy_reloads_total", Help: "Policy reloads by trigger (signal, watch, api) and result (reloaded, unchanged, failed).",
		}, []string{"trigger", "result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "admitd_policy_last_reload_success_timestamp_seconds", Help: "When the active policy set was loaded, as a Unix time.",
		}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "admitd_policy_info", Help: "1 for the active policy set, labelled with its revision and source.",
		}, []string{"revision", "source"}),
		stageOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_stage_results_total", Help: "Stage results by source (via), stage and outcome (allow, deny, error, skipped).",
		}, []string{"via", "stage", "outcome"}),
		warns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_warnings_total", Help: "Warnings by source (via), stage and code, including denies of stages in warn mode.",
		}, []string{"via", "stage", "code"}),
		logEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "admitd_decision_log_events_total", Help: "Decision-log events by result (written, failed).",
		}, []string{"result"}),
	}
	enforcing := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "admitd_enforcing", Help: "1 when this node may change membership (--mode enforce), 0 in --mode dry-run.",
		ConstLabels: prometheus.Labels{"mode": s.mode()},
	})
	if !s.cfg.DryRun {
		enforcing.Set(1)
	}
	reg := s.metrics.reg
	reg.MustRegister(o.reloads, o.lastSuccess, o.policyInfo, o.stageOutcomes, o.warns, o.logEvents, enforcing)
	for _, st := range []string{"Follower", "Candidate", "Leader", "Shutdown"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "admitd_raft_state", Help: "1 for the raft state this node is in.",
			ConstLabels: prometheus.Labels{"state": st},
		}, func() float64 {
			if s.node.State() == st {
				return 1
			}
			return 0
		}))
	}
	for _, t := range []string{"signal", "watch", "api"} {
		for _, r := range []string{"reloaded", "unchanged", "failed"} {
			o.reloads.WithLabelValues(t, r)
		}
	}
	o.logEvents.WithLabelValues("written")
	o.logEvents.WithLabelValues("failed")
	o.activated(s.Engine())
	return o
}

// mode names the node's mode.
func (s *Server) mode() string {
	if s.cfg.DryRun {
		return ModeDryRun
	}
	return ModeEnforce
}

// activated records a policy set becoming the active one.
func (o *ops) activated(e *admission.Engine) {
	o.policyInfo.Reset()
	o.policyInfo.WithLabelValues(e.Revision(), e.Source()).Set(1)
	o.lastSuccess.SetToCurrentTime()
}

// recorded is called for every decision the server records: stage
// metrics and the decision log.
func (o *ops) recorded(d *admission.Decision, via string) {
	mvia := admitd.MetricVia(d, via) // the gate's decision metrics' label: /v1/evaluate never counts as an admission
	for _, st := range d.Stages {
		o.stageOutcomes.WithLabelValues(mvia, st.Name, string(st.Outcome)).Inc()
		for _, v := range st.Warn {
			o.warns.WithLabelValues(mvia, st.Name, v.Code).Inc()
		}
	}
	dl := o.s.cfg.DecisionLog
	if dl == nil {
		return
	}
	eng := o.s.Engine()
	info := decisionlog.Info{
		NodeID: o.s.node.ID(), Version: version.Version, Mode: o.s.mode(), Via: via, Source: eng.Source(),
	}
	var mask decisionlog.MaskFunc
	if eng.HasMask() {
		mask = func(ctx context.Context, ev any) ([]admission.MaskOp, error) { return eng.Mask(ctx, ev) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := dl.Log(ctx, d, info, mask); err != nil {
		o.logEvents.WithLabelValues("failed").Inc()
		o.s.log.Error("decision log", "decision_id", d.DecisionID, "error", err)
		return
	}
	o.logEvents.WithLabelValues("written").Inc()
}

// PolicyStatus is the answer of GET /v1/policies.
type PolicyStatus struct {
	PolicyRevision string                `json:"policy_revision"`
	Source         string                `json:"source"`
	Stages         []string              `json:"stages"`
	Enforcement    map[string]string     `json:"enforcement"`
	Mask           bool                  `json:"mask"`
	SiteFacts      bool                  `json:"site_facts"`
	Mode           string                `json:"mode"`
	Tests          *admission.TestReport `json:"tests,omitempty"`
	Notes          []string              `json:"notes,omitempty"`
	LastReload     *ReloadResult         `json:"last_reload,omitempty"`
	ReloadEnabled  bool                  `json:"reload_enabled"`
}

func (s *Server) policyStatus() PolicyStatus {
	e := s.Engine()
	return PolicyStatus{
		PolicyRevision: e.Revision(), Source: e.Source(), Stages: e.Stages(),
		Enforcement: e.Enforcement(), Mask: e.HasMask(), SiteFacts: e.SiteFacts() != nil,
		Mode: s.mode(), Tests: e.Tests(), Notes: e.Notes(), LastReload: s.ops.last.Load(),
		ReloadEnabled: s.cfg.Reload != nil,
	}
}

func (s *Server) handlePolicies(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.policyStatus())
}

// wantExplain reads ?explain=true (or 1, or full, as OPA's explain=full).
func wantExplain(r *http.Request) bool {
	switch r.URL.Query().Get("explain") {
	case "true", "1", "full":
		return true
	}
	return false
}
