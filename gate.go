package admitd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/policies"
	"github.com/admitd/admitd/raftglue"
)

// Gate decides and applies membership changes on the host's raft. Its
// methods are safe for concurrent use; it changes the configuration one
// admission at a time.
type Gate struct {
	cfg     config
	host    *raftglue.Host
	log     hclog.Logger
	engine  atomic.Pointer[admission.Engine]
	metrics *metrics
	prom    *promoter

	// admitMu makes this server apply one change at a time; only the
	// leader applies, so that is one at a time per cluster.
	admitMu sync.Mutex
	logMu   sync.Mutex // decision-log lines are written whole

	watchStop chan struct{}
	watchDone chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
}

// New builds a gate over r, which the host created with fsm (from
// WrapFSM) as its FSM. The promoter runs while r leads.
func New(r Raft, fsm *FSM, opts ...Option) (*Gate, error) {
	if r == nil || isNilRaft(r) {
		return nil, fmt.Errorf("admitd.New: %w", raftglue.ErrNoRaft)
	}
	if fsm == nil {
		return nil, fmt.Errorf("admitd.New: %w", raftglue.ErrNoFSM)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg = cfg.withDefaults()
	host, err := raftglue.NewHost(r, fsm, raftglue.HostOptions{ID: cfg.localID, APIURL: cfg.apiURL, ApplyTimeout: cfg.deadlines.Apply})
	if err != nil {
		return nil, fmt.Errorf("admitd.New: %w", err)
	}
	eng, err := loadEngine(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.reg, host)
	if err != nil {
		return nil, fmt.Errorf("admitd.New: metrics: %w", err)
	}
	g := &Gate{cfg: cfg, host: host, log: cfg.log, metrics: m, prom: newPromoter(),
		watchStop: make(chan struct{}), watchDone: make(chan struct{})}
	g.engine.Store(eng)
	go g.watch()
	return g, nil
}

// isNilRaft catches a typed nil pointer, which is not == nil.
func isNilRaft(r Raft) bool {
	v := reflect.ValueOf(r)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func loadEngine(cfg config) (*admission.Engine, error) {
	if cfg.engine != nil {
		return cfg.engine, nil
	}
	src := admission.Source{FS: cfg.policies, Name: "policies"}
	if cfg.policies == nil {
		src = admission.Source{FS: policies.FS, Name: "embedded"}
	}
	eng, err := admission.Load(context.Background(), src)
	if err != nil {
		return nil, fmt.Errorf("admitd.New: %w", err)
	}
	return eng, nil
}

// Close stops the promoter and the leadership watch. It does not touch
// raft, which the host owns.
func (g *Gate) Close() error {
	g.closeOnce.Do(func() {
		g.closed.Store(true)
		close(g.watchStop)
		<-g.watchDone
	})
	return nil
}

// Engine is the active policy set.
func (g *Gate) Engine() *admission.Engine { return g.engine.Load() }

// SetEngine swaps the active policy set atomically; a decision in flight
// finishes on the set it started with.
func (g *Gate) SetEngine(e *admission.Engine) {
	if e != nil {
		g.engine.Store(e)
	}
}

// Host is admitd's side of the host's raft, for the daemon's HTTP layer.
func (g *Gate) Host() *raftglue.Host { return g.host }

// DryRun says the gate never changes membership.
func (g *Gate) DryRun() bool { return g.cfg.dryRun }

// Staging is how candidates are staged and promoted.
func (g *Gate) Staging() Staging { return g.cfg.staging }

// Progress lists the staged non-voters this leader watches.
func (g *Gate) Progress() []admission.StageProgress { return g.prom.list() }

// ProgressOf is the progress of one admission, while it is staged.
func (g *Gate) ProgressOf(admissionID string) (admission.StageProgress, bool) {
	return g.prom.byAdmission(admissionID)
}

// notLeader is ErrNotLeader with who leads.
func (g *Gate) notLeader() error {
	return &NotLeaderError{LeaderID: g.host.LeaderID(), LeaderAddr: g.host.LeaderAddr()}
}

// watch starts the promoter when this server leads and stops it when it
// does not, on raft's state and leader observations; a slow tick catches
// an observation dropped by raft's non-blocking send.
func (g *Gate) watch() {
	defer close(g.watchDone)
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	g.host.Raft().RegisterObserver(obs)
	defer g.host.Raft().DeregisterObserver(obs)
	tick := time.NewTicker(g.cfg.staging.Interval)
	defer tick.Stop()
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		switch leading := g.host.IsLeader(); {
		case leading && stop == nil:
			stop = g.startLeading()
		case !leading && stop != nil:
			stop()
			stop = nil
		}
		select {
		case <-g.watchStop:
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// startLeading runs the leader's duties until the returned stop is called.
func (g *Gate) startLeading() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.lead(ctx)
	}()
	return func() { cancel(); <-done }
}

// lead sets the cluster id a host cluster lacks, then promotes staged
// non-voters every interval while ctx lasts.
func (g *Gate) lead(ctx context.Context) {
	if err := g.ensureClusterID(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("recording the cluster id failed; the next admission tries again", "error", err)
	}
	t := time.NewTicker(g.cfg.staging.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.prom.keep(nil)
			return
		case <-t.C:
		}
		g.promoteRound(ctx)
	}
}

func (g *Gate) ensureClusterID(ctx context.Context) error {
	if g.cfg.dryRun {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.deadlines.Apply)
	defer cancel()
	return g.host.EnsureClusterID(ctx)
}

// record keeps, counts and logs one decision.
func (g *Gate) record(d *Decision, via string) {
	g.metrics.observeDecision(d, via)
	if g.cfg.onDecision != nil {
		g.cfg.onDecision(d, via)
	}
	g.writeDecisionLog(d, via)
	g.log.Info("decision", "decision_id", d.DecisionID, "via", via, "candidate", d.Candidate.ID,
		"allowed", d.Allowed, "enforced", d.Enforced, "stopped_at", d.StoppedAt, "reason", d.Reason)
}

func (g *Gate) writeDecisionLog(d *Decision, via string) {
	if g.cfg.decisionLog == nil {
		return
	}
	line, err := json.Marshal(struct {
		Via string `json:"via"`
		*Decision
	}{via, d})
	if err != nil {
		g.log.Error("decision log", "decision_id", d.DecisionID, "error", err)
		return
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	if _, err := g.cfg.decisionLog.Write(append(line, '\n')); err != nil {
		g.log.Error("decision log", "decision_id", d.DecisionID, "error", err)
	}
}

// Evaluate decides on a facts document someone else collected, with no
// side effect but the record.
func (g *Gate) Evaluate(ctx context.Context, in *admission.Input, explain bool) *Decision {
	eng := g.Engine()
	d := eng.Evaluate(ctx, in)
	if explain {
		eng.Explain(ctx, in, d)
	}
	d.DecidedBy = g.host.ID()
	g.record(d, "evaluate")
	return d
}

// evaluate completes collected facts with what only the leader knows and
// evaluates them with eng.
func (g *Gate) evaluate(ctx context.Context, eng *admission.Engine, doc *facts.Document, explain bool) (*Decision, error) {
	g.FillSelf(doc.Topology, eng.Revision()) // the revision deciding, even across a reload
	if site := eng.SiteFacts(); site != nil {
		doc.Site = site
	}
	g.metrics.observeFacts(doc)
	in, err := admission.InputFromDocument(doc)
	if err != nil {
		return nil, err
	}
	d := eng.Evaluate(ctx, in)
	if explain {
		eng.Explain(ctx, in, d)
	}
	d.DecidedBy = g.host.ID()
	d.Enforced = true
	return d, nil
}

// FillSelf adds this server's own policy revision to a topology; the
// collector learns the others' from their /v1/state.
func (g *Gate) FillSelf(t *facts.Topology, revision string) {
	if t == nil {
		return
	}
	for i := range t.Servers {
		if t.Servers[i].ID == g.host.ID() {
			t.Servers[i].PolicyRevision = revision
		}
	}
}

// Topology collects the topology section alone, as /v1/cluster shows it.
func (g *Gate) Topology(ctx context.Context) (*facts.Topology, error) {
	if !g.host.IsLeader() {
		return nil, g.notLeader()
	}
	t := facts.GatherTopology(ctx, g.collectConfig(), g.host)
	g.FillSelf(t, g.Engine().Revision())
	return t, nil
}

// collectConfig is the collectors' configuration with the probe speaking
// as this leader.
func (g *Gate) collectConfig() facts.CollectConfig {
	cc := g.cfg.collect
	addr, id := g.host.Raft().LeaderWithID()
	if g.host.IsLeader() {
		cc.ProbeAs = facts.ProbeFrom{ID: string(id), Addr: string(addr)}
	}
	return cc
}

var errInternalNoGrant = errors.New("admitd: internal: an allowed decision without a grant")
