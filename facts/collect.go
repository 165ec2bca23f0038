package facts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// CollectConfig bounds fact collection. Zero fields take their defaults.
type CollectConfig struct {
	Overall      time.Duration // whole Gather; default 3s
	Reachability time.Duration // reachability section; default 1.5s
	InitState    time.Duration // init_state section; default 1.5s
	Topology     time.Duration // topology section; default 1.5s

	RaftDialAttempts int           // TCP handshakes, made at once; default 3
	DialTimeout      time.Duration // per handshake; default 500ms

	// HTTPClient makes candidate and member calls; it carries TLS when
	// configured. Default: no redirects followed, bounded timeouts.
	HTTPClient *http.Client

	// TLSRequired says this node runs with TLS: the candidate must serve
	// HTTPS, and its certificate's identity is recorded as a fact.
	TLSRequired bool

	// MaxStateBytes bounds a /v1/state body; default 64 KiB.
	MaxStateBytes int64

	// MaxStaged is how many non-voters may be in stage at once, reported
	// as topology.max_staged; default 1.
	MaxStaged int

	// MaxMemberLag is how many entries behind the leader's last index a
	// member may be and still count as healthy; default 1000. A member
	// that cannot append (a full disk) falls behind and stops counting.
	MaxMemberLag uint64

	// ProbeAs is who the raft probe speaks as: the leader sets itself, so
	// members answer without logging a warning about an unknown server.
	ProbeAs ProbeFrom
}

// Defaults.
const (
	DefaultOverall          = 3 * time.Second
	DefaultSectionTimeout   = 1500 * time.Millisecond
	DefaultRaftDialAttempts = 3
	DefaultDialTimeout      = 500 * time.Millisecond
	DefaultMaxStateBytes    = 64 << 10
	DefaultMaxMemberLag     = 1000
)

func (c CollectConfig) withDefaults() CollectConfig {
	c.Overall = orDefault(c.Overall, DefaultOverall)
	c.Reachability = orDefault(c.Reachability, DefaultSectionTimeout)
	c.InitState = orDefault(c.InitState, DefaultSectionTimeout)
	c.Topology = orDefault(c.Topology, DefaultSectionTimeout)
	c.DialTimeout = orDefault(c.DialTimeout, DefaultDialTimeout)
	if c.RaftDialAttempts <= 0 {
		c.RaftDialAttempts = DefaultRaftDialAttempts
	}
	if c.MaxStateBytes <= 0 {
		c.MaxStateBytes = DefaultMaxStateBytes
	}
	if c.MaxStaged <= 0 {
		c.MaxStaged = 1
	}
	if c.MaxMemberLag == 0 {
		c.MaxMemberLag = DefaultMaxMemberLag
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient()
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// defaultHTTPClient is shared so connection pools do not pile up per Gather.
// It follows no redirects (a 3xx is an answer, not a hint to call elsewhere),
// uses no proxy (peers are addressed directly, like raft itself), and caps
// response headers because candidates are not trusted.
var defaultHTTPClient = sync.OnceValue(func() *http.Client { return NewHTTPClient(nil) })

// NewHTTPClient is the collectors' client with tlsCfg (nil: Go's defaults)
// for HTTPS calls.
func NewHTTPClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Timeout: DefaultOverall,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			DialContext:            (&net.Dialer{Timeout: DefaultDialTimeout}).DialContext,
			TLSHandshakeTimeout:    DefaultSectionTimeout,
			ResponseHeaderTimeout:  DefaultSectionTimeout,
			MaxResponseHeaderBytes: 16 << 10,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
			TLSClientConfig:        tlsCfg,
		},
	}
}

// Gather collects all sections concurrently, each under its own deadline
// inside cfg.Overall. Every section is non-nil; one that could not finish
// has Collected=false, an Error and nothing else.
func Gather(ctx context.Context, cfg CollectConfig, cand Candidate, view ClusterView) *Document {
	cfg = cfg.withDefaults()
	doc := &Document{Schema: Schema, Phase: PhaseAdmit, CollectedAt: time.Now().UTC(), Candidate: cand}
	gather(ctx, cfg, doc, view, func(ctx context.Context, state *stateFetch, rf *raftFetch) {
		doc.InitState = runSection(ctx, cfg.InitState, func(ctx context.Context) (*InitState, error) {
			return collectInitState(ctx, cand, state, rf)
		})
	})
	return doc
}

// gather fills doc's reachability and topology, and runs the phase's own
// section (init_state or catch_up) beside them. One GET of the candidate's
// /v1/state (when it has an API) and one raft probe of its raft address
// feed reachability and the phase's section, under the stricter of their
// deadlines.
func gather(ctx context.Context, cfg CollectConfig, doc *Document, view ClusterView, own func(context.Context, *stateFetch, *raftFetch)) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Overall)
	defer cancel()
	cand := doc.Candidate
	budget := min(cfg.Reachability, cfg.InitState)
	state := startStateFetch(ctx, budget, cfg.HTTPClient, cand.APIURL, cfg.MaxStateBytes)
	defer state.cancel()
	rctx, rcancel := context.WithTimeout(ctx, budget)
	defer rcancel()
	rf := startRaftFetch(rctx, cand.RaftAddr, cfg.ProbeAs)
	defer rf.cancel()

	var wg sync.WaitGroup
	wg.Go(func() {
		doc.Reachability = runSection(ctx, cfg.Reachability, func(ctx context.Context) (*Reachability, error) {
			return collectReachability(ctx, cfg, cand, state, rf)
		})
	})
	wg.Go(func() { own(ctx, state, rf) })
	wg.Go(func() {
		doc.Topology = runSection(ctx, cfg.Topology, func(ctx context.Context) (*Topology, error) {
			return collectTopology(ctx, cfg, view, cand.RaftAddr)
		})
	})
	wg.Wait()
}

// head gives runSection access to the Section embedded in every section type.
func (s *Section) head() *Section { return s }

type sectionPtr[T any] interface {
	*T
	head() *Section
}

type sectionResult[P any] struct {
	val P
	err error
}

// runSection runs collect in its own goroutine and returns by the section's
// deadline even if collect ignores its context; a late result is dropped.
// On any failure the result is a fresh zero section so nothing half-filled
// can look healthy.
func runSection[T any, P sectionPtr[T]](ctx context.Context, timeout time.Duration, collect func(context.Context) (P, error)) P {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	done := make(chan sectionResult[P], 1) // buffered: a late sender never blocks
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- sectionResult[P]{err: fmt.Errorf("collector panicked: %v", r)}
			}
		}()
		v, err := collect(ctx)
		done <- sectionResult[P]{val: v, err: err}
	}()

	var res sectionResult[P]
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = deadlineError(ctx, start)
	}
	if res.err == nil && res.val == nil {
		res.err = errors.New("collector returned no result")
	}
	out := res.val
	if res.err != nil {
		out = P(new(T))
		out.head().Error = res.err.Error()
	} else {
		out.head().Collected = true
		out.head().Error = ""
	}
	out.head().DurationMS = Ms(time.Since(start))
	return out
}

// deadlineError says how long the section had, which is what an operator
// needs to tune the timeouts.
func deadlineError(ctx context.Context, start time.Time) error {
	budget := time.Since(start)
	if dl, ok := ctx.Deadline(); ok {
		budget = dl.Sub(start)
	}
	budget = budget.Round(time.Millisecond)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timeout after %s: %w", budget, ctx.Err())
	}
	return fmt.Errorf("canceled: %w", ctx.Err())
}

// probeContext keeps a tenth of ctx's remaining time in reserve, so a probe
// that times out is reported as a fact (collected, not ok) before the
// section's own deadline cuts the whole section off.
func probeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	remaining := time.Until(dl)
	return context.WithTimeout(ctx, remaining-remaining/10)
}

// GatherTopology collects the topology section alone, for /v1/cluster.
func GatherTopology(ctx context.Context, cfg CollectConfig, view ClusterView) *Topology {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Overall)
	defer cancel()
	return runSection(ctx, cfg.Topology, func(ctx context.Context) (*Topology, error) {
		return collectTopology(ctx, cfg, view, "")
	})
}

// GatherRemove collects the facts for removing or demoting a member (change
// is ChangeRemove or ChangeDemote): the topology alone, since the member
// need not answer; removing a dead member is the common case.
func GatherRemove(ctx context.Context, cfg CollectConfig, cand Candidate, change string, view ClusterView) *Document {
	doc := &Document{Schema: Schema, Phase: PhaseRemove, Change: change, CollectedAt: time.Now().UTC(), Candidate: cand}
	doc.Topology = GatherTopology(ctx, cfg, view)
	return doc
}
