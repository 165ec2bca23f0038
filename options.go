package admitd

import (
	"context"
	"io"
	"io/fs"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// Option configures a Gate.
type Option func(*config)

// Staging says how staged candidates are promoted.
type Staging struct {
	// Enabled adds candidates as non-voters first; default true.
	Enabled bool
	// Deadline bounds how long a non-voter may stay staged; past it, one
	// that is still not allowed is removed. Default 5m.
	Deadline time.Duration
	// Keep leaves a non-voter that missed its deadline in place.
	Keep bool
	// Interval is the time between promotion rounds; default 1s.
	Interval time.Duration
}

func (c Staging) withDefaults() Staging {
	if c.Deadline <= 0 {
		c.Deadline = 5 * time.Minute
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	return c
}

// Deadlines bound one admission.
type Deadlines struct {
	// Admit bounds one admission, every attempt included; default 30s.
	Admit time.Duration
	// Apply bounds one raft membership change; default 10s.
	Apply time.Duration
}

type config struct {
	log         hclog.Logger
	policies    fs.FS
	engine      *admission.Engine
	staging     Staging
	collect     facts.CollectConfig
	deadlines   Deadlines
	maxAttempts int
	reg         prometheus.Registerer
	decisionLog io.Writer
	onDecision  func(d *Decision, via string)
	beforeAdd   func(ctx context.Context, d *Decision) error
	localID     string
	apiURL      string
	dryRun      bool
}

func defaultConfig() config {
	return config{staging: Staging{Enabled: true}, maxAttempts: 3}
}

func (c config) withDefaults() config {
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if c.deadlines.Admit <= 0 {
		c.deadlines.Admit = 30 * time.Second
	}
	if c.deadlines.Apply <= 0 {
		c.deadlines.Apply = 10 * time.Second
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 3
	}
	if c.reg == nil {
		c.reg = prometheus.NewRegistry() // nobody scrapes it: metrics stay private
	}
	c.staging = c.staging.withDefaults()
	return c
}

// WithLogger logs through the host's logger; default: none.
func WithLogger(l hclog.Logger) Option { return func(c *config) { c.log = l } }

// WithPolicies loads the policy set from fsys; default: the shipped set,
// embedded in the module.
func WithPolicies(fsys fs.FS) Option { return func(c *config) { c.policies = fsys } }

// WithEngine uses a policy set the host already loaded (see SetEngine for
// reloads). It wins over WithPolicies.
func WithEngine(e *admission.Engine) Option { return func(c *config) { c.engine = e } }

// WithStaged adds candidates as non-voters first (default true) or
// directly as voters.
func WithStaged(on bool) Option { return func(c *config) { c.staging.Enabled = on } }

// WithStaging sets how staged candidates are promoted.
func WithStaging(s Staging) Option { return func(c *config) { c.staging = s } }

// WithCollect sets the facts collectors' deadlines and clients.
func WithCollect(cc facts.CollectConfig) Option { return func(c *config) { c.collect = cc } }

// WithDeadlines bounds admissions and raft changes.
func WithDeadlines(d Deadlines) Option { return func(c *config) { c.deadlines = d } }

// WithMaxAttempts bounds the re-collections after a configuration change
// raced an admission; default 3.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithRegisterer registers the gate's Prometheus metrics; default: a
// private registry.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// WithDecisionLog writes every decision as one JSON line to w.
func WithDecisionLog(w io.Writer) Option { return func(c *config) { c.decisionLog = w } }

// WithDecisionHook calls fn with every decision the gate makes, and where
// it came from ("admission", "promotion", "removal", "evaluate").
func WithDecisionHook(fn func(d *Decision, via string)) Option {
	return func(c *config) { c.onDecision = fn }
}

// WithBeforeAdd calls fn with an allowed decision right before its raft
// change; an error stops the change (the admission fails with it).
func WithBeforeAdd(fn func(ctx context.Context, d *Decision) error) Option {
	return func(c *config) { c.beforeAdd = fn }
}

// WithLocalID names this server's raft id (raft.Config.LocalID). Without
// it the gate learns it from raft while leading.
func WithLocalID(id string) Option { return func(c *config) { c.localID = id } }

// WithAPIURL registers this server's API URL in the replicated state, for
// hosts whose members serve admitd's /v1/state.
func WithAPIURL(u string) Option { return func(c *config) { c.apiURL = u } }

// WithDryRun decides and records admissions but never changes membership.
func WithDryRun(on bool) Option { return func(c *config) { c.dryRun = on } }
