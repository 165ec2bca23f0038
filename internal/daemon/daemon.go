// Package daemon runs one admitd node: policies, raft, the HTTP API, and
// the node's own way into a cluster (bootstrap, join, or wait).
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/internal/version"
	"github.com/admitd/admitd/raftglue"
)

// Config is everything `admitd serve` takes.
type Config struct {
	ID          string
	RaftAddr    string
	HTTPAddr    string
	APIURL      string // advertised; default http://<bound http addr>
	DataDir     string // default ./data/<id>
	Policies    string // default ./policies, else embedded
	Bootstrap   bool
	Join        []string
	JoinTimeout time.Duration
	Logger      hclog.Logger
	Collect     facts.CollectConfig
	Raft        RaftTimeouts
	Decisions   int
	// Token is the cluster's shared bearer token; empty leaves the API open.
	Token string
	TLS   TLSFiles
	// AdmissionRate limits POST /v1/admissions per second, in bursts of
	// AdmissionBurst; 0 is unlimited.
	AdmissionRate  float64
	AdmissionBurst int

	// Ops: mode, decision log, site facts, policy tests and reloads (reload.go).
	Ops OpsConfig
	// Staging: admit candidates as non-voters and promote them later.
	Staging server.StagingConfig
	// DebugEndpoints serves POST /v1/debug/fill, for load tests only.
	DebugEndpoints bool

	clientTLS *tls.Config // loaded from TLS, for the join client
}

// RaftTimeouts tune raft; zero keeps raft's LAN defaults.
type RaftTimeouts struct {
	Heartbeat, Election, LeaderLease, Commit time.Duration
	// TrailingLogs, SnapshotThreshold and WALSegmentBytes tune log
	// compaction (which drops whole segments only).
	TrailingLogs, SnapshotThreshold uint64
	WALSegmentBytes                 int
}

// ErrJoinRefused is a deny that waiting cannot change.
var ErrJoinRefused = errors.New("join refused")

// Run serves until ctx ends, then shuts down cleanly.
func Run(ctx context.Context, cfg Config) error {
	cfg = withDefaults(cfg)
	log := cfg.Logger
	if err := cfg.Ops.Check(); err != nil {
		return err
	}
	engine, err := loadPolicySet(ctx, cfg)
	if err != nil {
		return err
	}
	logPolicySet(log, engine)
	dlog, err := openDecisionLog(cfg)
	if err != nil {
		return err
	}
	if dlog != nil {
		defer dlog.Close()
	}
	sec, err := loadSecurity(cfg.TLS)
	if err != nil {
		return err
	}
	warnIfOpen(log, cfg, sec)
	cfg.clientTLS, cfg.Collect = sec.client, sec.collect(cfg.Collect)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	if cfg.APIURL == "" {
		cfg.APIURL = sec.scheme() + "://" + ln.Addr().String()
	}
	raftSink, err := subscribeRaftMetrics()
	if err != nil {
		ln.Close()
		return err
	}
	defer raftSinks.remove(raftSink)
	node, err := openNode(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer shutdownNode(log, node)
	srv, err := server.New(server.Config{Node: node, Engine: engine, Logger: log.Named("api"),
		Collect: cfg.Collect, DecisionsKept: cfg.Decisions,
		Token: cfg.Token, ClientTLS: sec.client, AdmissionRate: cfg.AdmissionRate, AdmissionBurst: cfg.AdmissionBurst,
		DecisionLog: dlog, DryRun: cfg.Ops.dryRun(), Staging: cfg.Staging, DebugEndpoints: cfg.DebugEndpoints,
		AwaitAdmission: !cfg.Bootstrap && len(cfg.Join) == 0,
		Reload:         func(ctx context.Context) (*admission.Engine, error) { return loadPolicySet(ctx, cfg) }})
	if err != nil {
		ln.Close()
		return err
	}
	if err := srv.Registry().Register(raftSink); err != nil {
		_ = srv.Close()
		ln.Close()
		return fmt.Errorf("raft metrics: %w", err)
	}
	if cfg.Ops.dryRun() {
		log.Warn("mode dry-run: admissions are decided and logged, membership is never changed")
	}
	if cfg.Staging.Enabled && engine.PromoteStages() == nil {
		log.Warn("staged joins are on, but the policy set defines no admitd.pipeline.promote_stages: staged candidates will never be promoted")
	}
	defer startReloads(ctx, cfg, srv)()
	return serve(ctx, cfg, node, srv, sec.listen(ln))
}

func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "admitd"})
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join("data", cfg.ID)
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 2 * time.Minute
	}
	return cfg
}

func openNode(cfg Config) (*raftglue.Node, error) {
	return raftglue.Open(raftglue.Config{
		ID: cfg.ID, RaftAddr: cfg.RaftAddr, APIURL: cfg.APIURL, DataDir: cfg.DataDir,
		Logger:           cfg.Logger.Named("raft"),
		HeartbeatTimeout: cfg.Raft.Heartbeat, ElectionTimeout: cfg.Raft.Election,
		LeaderLeaseTimeout: cfg.Raft.LeaderLease, CommitTimeout: cfg.Raft.Commit,
		TrailingLogs: cfg.Raft.TrailingLogs, SnapshotThreshold: cfg.Raft.SnapshotThreshold,
		WALSegmentBytes: cfg.Raft.WALSegmentBytes,
		Fence:           true,
	})
}

func shutdownNode(log hclog.Logger, node *raftglue.Node) {
	if err := node.Shutdown(); err != nil {
		log.Error("raft shutdown", "error", err)
	}
}

// serve runs the API and the node's way in, until ctx ends or joining fails.
func serve(ctx context.Context, cfg Config, node *raftglue.Node, srv *server.Server, ln net.Listener) error {
	log := cfg.Logger
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout, ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving", "id", cfg.ID, "version", version.Version, "http", ln.Addr().String(),
		"api_url", cfg.APIURL, "raft", node.Addr(), "data_dir", cfg.DataDir)
	go func() { errc <- enter(ctx, cfg, node) }()
	err := waitForEnd(ctx, errc)
	_ = srv.Close() // the gate's promoter stops before raft does
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	log.Info("stopped")
	return err
}

// waitForEnd returns when ctx ends or a goroutine fails; a nil result from
// entering the cluster is not an end.
func waitForEnd(ctx context.Context, errc <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		}
	}
}

// enter takes the node into a cluster the way its flags say. A node that
// has state never bootstraps or joins: it rejoins its own cluster.
func enter(ctx context.Context, cfg Config, node *raftglue.Node) error {
	log := cfg.Logger
	switch {
	case node.Initialized() && len(cfg.Join) > 0:
		return checkJoinTarget(ctx, cfg, node)
	case node.Initialized():
		log.Info("existing raft state found; restarting as a member of its cluster", "bootstrap_ignored", cfg.Bootstrap)
		go repairClusterID(ctx, cfg, node)
		return nil
	case len(cfg.Join) > 0:
		return join(ctx, cfg, node)
	case cfg.Bootstrap:
		return bootstrap(ctx, log, node)
	}
	log.Info("uninitialized; waiting until an operator admits this node", "id", cfg.ID, "raft", node.Addr(), "api_url", cfg.APIURL)
	return nil
}

func bootstrap(ctx context.Context, log hclog.Logger, node *raftglue.Node) error {
	err := node.Bootstrap(ctx)
	if errors.Is(err, raftglue.ErrHasState) {
		log.Info("existing raft state found; not bootstrapping")
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	log.Info("bootstrapped a new cluster", "cluster_id", node.ClusterID())
	return nil
}

// Raft reports its metrics (commit time, last contact, FSM apply, ...) to
// go-metrics, whose sink is one per process. The daemon owns its process,
// so it sets that global, once, to raftSinks, and each daemon subscribes
// the registry of its /metrics while it runs. The library never sets it:
// an embedding host does (docs/metrics.md). A process runs one daemon;
// tests run several, and each registry then sees every node's raft, as
// raft's series do not name their node.
var (
	raftSinks      = &sinkSet{}
	raftGlobalOnce sync.Once
	raftGlobalErr  error
)

// raftLegacyPrefixes block the series raft 1.8 emits twice, once with a
// peer_id label and once with the peer's id in the name: the second is a
// new metric name per peer.
var raftLegacyPrefixes = []string{
	"admitd.raft.replication.appendEntries.rpc.",
	"admitd.raft.replication.appendEntries.logs.",
	"admitd.raft.replication.heartbeat.",
	"admitd.raft.replication.installSnapshot.",
}

// subscribeRaftMetrics returns a Prometheus sink fed with raft's metrics
// until raftSinks.remove; it is subscribed before raft starts so that its
// first state transitions count, and registered on the server's registry
// once that exists.
func subscribeRaftMetrics() (*gmprom.PrometheusSink, error) {
	raftGlobalOnce.Do(func() {
		conf := gometrics.DefaultConfig("admitd") // series are admitd_raft_*
		conf.HostName, conf.EnableHostname, conf.EnableHostnameLabel = "", false, false
		conf.EnableRuntimeMetrics = false // the Go collector exports the runtime's
		conf.BlockedPrefixes = raftLegacyPrefixes
		_, raftGlobalErr = gometrics.NewGlobal(conf, raftSinks)
	})
	if raftGlobalErr != nil {
		return nil, fmt.Errorf("raft metrics: %w", raftGlobalErr)
	}
	// No expiry: a counter that vanished a minute after its last increase
	// would break rate() and increase() in alerts.
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
		Registerer: prometheus.NewRegistry(), // the sink registers itself; the server's registry comes later
		Name:       "admitd_raft_metrics",
	})
	if err != nil {
		return nil, fmt.Errorf("raft metrics: %w", err)
	}
	raftSinks.add(sink)
	return sink, nil
}

// sinkSet is a go-metrics sink that forwards to the sinks subscribed now.
type sinkSet struct {
	mu    sync.RWMutex
	sinks []gometrics.MetricSink
}

func (s *sinkSet) add(m gometrics.MetricSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sinks = append(s.sinks, m)
}

func (s *sinkSet) remove(m gometrics.MetricSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sinks = slices.DeleteFunc(s.sinks, func(x gometrics.MetricSink) bool { return x == m })
}

func (s *sinkSet) each(fn func(gometrics.MetricSink)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.sinks {
		fn(m)
	}
}

func (s *sinkSet) SetGauge(key []string, val float32) {
	s.each(func(m gometrics.MetricSink) { m.SetGauge(key, val) })
}

func (s *sinkSet) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	s.each(func(m gometrics.MetricSink) { m.SetGaugeWithLabels(key, val, labels) })
}

func (s *sinkSet) SetPrecisionGauge(key []string, val float64) {
	s.SetPrecisionGaugeWithLabels(key, val, nil)
}

func (s *sinkSet) SetPrecisionGaugeWithLabels(key []string, val float64, labels []gometrics.Label) {
	s.each(func(m gometrics.MetricSink) {
		if p, ok := m.(gometrics.PrecisionGaugeMetricSink); ok {
			p.SetPrecisionGaugeWithLabels(key, val, labels)
		}
	})
}

func (s *sinkSet) EmitKey(key []string, val float32) {
	s.each(func(m gometrics.MetricSink) { m.EmitKey(key, val) })
}

func (s *sinkSet) IncrCounter(key []string, val float32) {
	s.each(func(m gometrics.MetricSink) { m.IncrCounter(key, val) })
}

func (s *sinkSet) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	s.each(func(m gometrics.MetricSink) { m.IncrCounterWithLabels(key, val, labels) })
}

func (s *sinkSet) AddSample(key []string, val float32) {
	s.each(func(m gometrics.MetricSink) { m.AddSample(key, val) })
}

func (s *sinkSet) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	s.each(func(m gometrics.MetricSink) { m.AddSampleWithLabels(key, val, labels) })
}
