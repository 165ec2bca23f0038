// Package server is the HTTP API of one admitd node: it serves its state,
// decides admissions on the leader and forwards them from followers.
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/version"
	"github.com/admitd/admitd/raftglue"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// Config holds what a server needs beyond its raft node.
type Config struct {
	Node          *raftglue.Node
	Engine        *admission.Engine
	Logger        hclog.Logger
	Collect       facts.CollectConfig
	DecisionsKept int           // evaluate decisions kept (ring.go)
	AdmitTimeout  time.Duration // one admission, all attempts included
	ApplyTimeout  time.Duration // one AddVoter, waited on by raftglue
	MaxAttempts   int           // re-collections after a configuration change
	Client        *http.Client  // for forwarding to the leader
	// ClientTLS is used by the default forwarding client: the CA that signs
	// the nodes and this node's own certificate.
	ClientTLS *tls.Config
	// Token, when set, is required as a bearer token by every guarded
	// endpoint; all nodes of a cluster share it.
	Token string
	// AdmissionRate is POST /v1/admissions per second, in bursts of
	// AdmissionBurst; 0 means unlimited.
	AdmissionRate  float64
	AdmissionBurst int
	// Operations (ops.go, reload.go): the decision log (nil: none), the
	// daemon's dry-run mode (decide and log, never change membership), and
	// how to build a new policy set on reload (nil: reload unavailable).
	DecisionLog *decisionlog.Logger
	DryRun      bool
	Reload      ReloadFunc
	// Staging: staged joins and their promotion (staged.go).
	Staging StagingConfig
	// DebugEndpoints serves POST /v1/debug/fill (debug.go).
	DebugEndpoints bool
	// AwaitAdmission: the node was started to wait until an operator
	// admits it, so a fresh node is ready as it is (readyz).
	AwaitAdmission bool
	// ChangeDecisionsKept is how many admission, promotion and removal
	// decisions are kept, apart from evaluations (ring.go); default the
	// larger of 512 and DecisionsKept. Beyond it the decisions of
	// admissions still staged stay, up to 4 times as many.
	ChangeDecisionsKept int
}

func (c Config) withDefaults() Config {
	if c.DecisionsKept <= 0 {
		c.DecisionsKept = 256
	}
	if c.ChangeDecisionsKept <= 0 {
		c.ChangeDecisionsKept = max(512, c.DecisionsKept)
	}
	if c.AdmitTimeout <= 0 {
		c.AdmitTimeout = 30 * time.Second
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.AdmitTimeout + 5*time.Second, Transport: forwardTransport(c.ClientTLS)}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Server is the HTTP API of one node.
type Server struct {
	cfg       Config
	node      *raftglue.Node
	log       hclog.Logger
	gate      *admitd.Gate    // decides and applies every membership change
	decisions *decisions      // recent decisions, by kind (ring.go)
	admitted  *admittedLedger // proofs of admission taken (fence.go)
	metrics   *metrics
	limiter   *rate.Limiter // admissions; nil when unlimited
	ops       *ops          // reloads, decision log, extra metrics (ops.go)
}

// New builds a server; Handler serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil || cfg.Engine == nil {
		return nil, errors.New("server: a raft node and a policy engine are required")
	}
	cfg = cfg.withDefaults()
	note, err := cfg.Node.AdmittedNote()
	if err != nil {
		cfg.Logger.Warn("reading the recorded admission failed; its replay is refused on expiry alone", "error", err)
	}
	s := &Server{
		cfg:      cfg,
		node:     cfg.Node,
		log:      cfg.Logger,
		admitted: newAdmittedLedger(note),
		metrics:  newMetrics(),
		limiter:  newLimiter(cfg.AdmissionRate, cfg.AdmissionBurst),
	}
	s.decisions = newDecisions(cfg.DecisionsKept, cfg.ChangeDecisionsKept, 4*cfg.ChangeDecisionsKept, s.stagedAdmissions)
	gate, err := admitd.New(cfg.Node.Raft(), cfg.Node.FSM(),
		admitd.WithEngine(cfg.Engine), admitd.WithLogger(cfg.Logger), admitd.WithCollect(cfg.Collect),
		admitd.WithStaging(cfg.Staging), admitd.WithDryRun(cfg.DryRun), admitd.WithMaxAttempts(cfg.MaxAttempts),
		admitd.WithDeadlines(admitd.Deadlines{Admit: cfg.AdmitTimeout, Apply: cfg.ApplyTimeout}),
		admitd.WithRegisterer(s.metrics.reg), admitd.WithDecisionHook(s.recorded), admitd.WithBeforeAdd(s.tellAdmitted),
		admitd.WithLocalID(cfg.Node.ID()), admitd.WithAPIURL(cfg.Node.APIURL()))
	if err != nil {
		return nil, err
	}
	s.gate = gate
	s.metrics.observeRaft(s.node)
	s.ops = newOps(s)
	return s, nil
}

// Close stops the gate's promoter; the node is the daemon's to stop.
func (s *Server) Close() error { return s.gate.Close() }

// Gate is the admission gate this server serves.
func (s *Server) Gate() *admitd.Gate { return s.gate }

// Engine is the active policy set.
func (s *Server) Engine() *admission.Engine { return s.gate.Engine() }

// SetEngine swaps the active policy set atomically.
func (s *Server) SetEngine(e *admission.Engine) { s.gate.SetEngine(e) }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+facts.StatePath, s.handleState)
	mux.HandleFunc("GET "+api.ClusterPath, s.handleCluster)
	mux.HandleFunc("POST "+api.AdmissionsPath, s.guard(s.limit(s.handleAdmissions)))
	mux.HandleFunc("GET "+api.AdmissionsPath+"/{id}", s.guard(s.handleAdmissionStatus))
	// Not guarded: the leader never sends the token to a candidate; with
	// one configured the body carries a proof of the admission (fence.go).
	mux.HandleFunc("POST "+AdmittedPath, s.handleAdmitted)
	if s.cfg.DebugEndpoints {
		mux.HandleFunc("POST /v1/debug/fill", s.guard(s.handleFill))
	}
	mux.HandleFunc("DELETE "+api.MembersPath+"/{id}", s.guard(s.handleRemoveMember))
	mux.HandleFunc("POST "+api.MembersPath+"/{id}/demote", s.guard(s.handleDemoteMember))
	mux.HandleFunc("DELETE "+api.TombstonesPath+"/{id}", s.guard(s.handleClearTombstone))
	mux.HandleFunc("POST /v1/evaluate", s.handleEvaluate)
	mux.HandleFunc("GET /v1/decisions", s.guard(s.handleDecisions))
	mux.HandleFunc("GET /v1/decisions/{id}", s.guard(s.handleDecision))
	mux.HandleFunc("GET /v1/policies", s.handlePolicies)
	mux.HandleFunc("POST /v1/policies/reload", s.guard(s.handleReload))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no route for %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	return prettyJSON(mux)
}

// State is this node's init state as served on /v1/state.
func (s *Server) State() facts.NodeState {
	n := s.node
	return facts.NodeState{
		NodeID:         n.ID(),
		RaftAddr:       n.Addr(),
		APIURL:         n.APIURL(),
		Initialized:    n.Initialized(),
		ClusterID:      n.ClusterID(),
		LastIndex:      n.LastIndex(),
		LastTerm:       n.LastTerm(),
		Term:           n.Term(),
		LastContactMS:  lastContactMS(n.LastContact()),
		RaftState:      n.State(),
		LeaderID:       n.LeaderID(),
		Version:        version.Version,
		PolicyRevision: s.Engine().Revision(),
	}
}

// lastContactMS is the age of a last contact, -1 for never.
func lastContactMS(t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return facts.Ms(time.Since(t))
}

func (s *Server) handleState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.State())
}

func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	if !s.node.IsLeader() {
		s.forward(w, r, nil)
		return
	}
	topo, err := s.gate.Topology(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ClusterView{Topology: *topo, Staging: s.gate.Progress()})
}

func (s *Server) handleEvaluate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	dec, err := facts.DecodeBytes(body)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := admission.NewInput(dec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.gate.Evaluate(r.Context(), in, wantExplain(r)))
}

func (s *Server) handleDecisions(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, fmt.Errorf("%w: limit must be a positive integer", ErrBadRequest))
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": s.decisions.latest(limit)})
}

func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request) {
	d := s.decisions.find(r.PathValue("id"))
	if d == nil {
		writeError(w, fmt.Errorf("%w: no decision %q is kept on this node", ErrNotFound, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz says whether this node can do its job: a member that knows
// its leader (and, on a follower, the leader's API, to forward to), with
// its policies loaded; or a fresh node that waits to be admitted. A node
// that bootstraps or joins is not ready until it is a member with a leader.
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	role, why := s.readiness()
	if why != "" {
		writeError(w, fmt.Errorf("%w: %s", ErrNotReady, why))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "role": role, "raft_state": s.node.State(),
		"leader_id": s.node.LeaderID(), "policy_revision": s.Engine().Revision()})
}

// readiness names the role this node is ready for, or why it is not ready.
func (s *Server) readiness() (role, why string) {
	n := s.node
	switch {
	case s.Engine() == nil:
		return "", "policies not loaded"
	case n.State() == "Shutdown":
		return "", "raft is not running"
	case !n.Initialized() && s.cfg.AwaitAdmission:
		return "waiting for admission", ""
	case !n.Initialized():
		return "", "not a member yet (bootstrapping or joining)"
	case n.LeaderID() == "":
		return "", "no leader known"
	case n.ClusterID() == "":
		return "", "the cluster id is not replicated here yet"
	case n.IsLeader():
		return "leader", ""
	case n.Members()[n.LeaderID()].APIURL == "":
		return "", "the leader's API URL is not replicated here yet"
	}
	return "follower", ""
}

// readBody reads a bounded body; a larger one is ErrTooLarge.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// A declared length over the limit is refused before waiting for a
	// body that may never come.
	if r.ContentLength > MaxBodyBytes {
		return nil, fmt.Errorf("%w: Content-Length %d is over the limit of %d bytes", ErrTooLarge, r.ContentLength, MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, MaxBodyBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	return b, nil
}

// recorded keeps a decision the gate made and feeds the operators' trail.
func (s *Server) recorded(d *admission.Decision, via string) {
	s.decisions.add(d, via)
	s.ops.recorded(d, via)
}

// stagedAdmissions are the admission ids staged in the replicated state:
// their decisions are kept past ChangeDecisionsKept.
func (s *Server) stagedAdmissions() map[string]bool {
	ids := map[string]bool{}
	for _, st := range s.node.Staged() {
		if st.AdmissionID != "" {
			ids[st.AdmissionID] = true
		}
	}
	return ids
}
