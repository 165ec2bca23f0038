package facts

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// StatePath is where every node serves its NodeState.
const StatePath = "/v1/state"

// nodeStateWire mirrors NodeState with pointers for the fields the
// collectors rely on, so a missing or null field is an error rather than a
// zero that reads as "not initialized".
type nodeStateWire struct {
	NodeID         *string  `json:"node_id"`
	RaftAddr       string   `json:"raft_addr"`
	APIURL         string   `json:"api_url"`
	Initialized    *bool    `json:"initialized"`
	ClusterID      *string  `json:"cluster_id"`
	LastIndex      *uint64  `json:"last_index"`
	LastTerm       *uint64  `json:"last_term"`
	Term           uint64   `json:"term"`
	LastContactMS  *float64 `json:"last_contact_ms"`
	RaftState      string   `json:"raft_state"`
	LeaderID       string   `json:"leader_id"`
	Version        string   `json:"version"`
	PolicyRevision string   `json:"policy_revision"`
}

// ParseNodeState reads one /v1/state body of at most max bytes. Unknown
// fields are accepted (newer nodes may add some); wrong types, trailing
// data and missing required fields (node_id, initialized, cluster_id,
// last_index, last_term) are errors.
func ParseNodeState(r io.Reader, max int64) (NodeState, error) {
	if max <= 0 {
		max = DefaultMaxStateBytes
	}
	raw, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return NodeState{}, fmt.Errorf("read state: %w", err)
	}
	if int64(len(raw)) > max {
		return NodeState{}, fmt.Errorf("state body too large: over %d bytes", max)
	}
	var w nodeStateWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&w); err != nil {
		return NodeState{}, fmt.Errorf("state body: %w", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return NodeState{}, errors.New("state body: unexpected data after the JSON document")
	}
	return w.toNodeState()
}

func (w nodeStateWire) toNodeState() (NodeState, error) {
	var missing []string
	for _, f := range []struct {
		name   string
		absent bool
	}{
		{"node_id", w.NodeID == nil}, {"initialized", w.Initialized == nil},
		{"cluster_id", w.ClusterID == nil}, {"last_index", w.LastIndex == nil},
		{"last_term", w.LastTerm == nil},
	} {
		if f.absent {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return NodeState{}, fmt.Errorf("state body: missing or null: %s", strings.Join(missing, ", "))
	}
	if err := ValidateID(*w.NodeID); err != nil {
		return NodeState{}, fmt.Errorf("state body: node_id: %v", err)
	}
	contact := -1.0 // not reported: as if never, which no policy accepts
	if w.LastContactMS != nil {
		contact = *w.LastContactMS
	}
	return NodeState{
		LastContactMS: contact,
		NodeID:        *w.NodeID, RaftAddr: w.RaftAddr, APIURL: w.APIURL,
		Initialized: *w.Initialized, ClusterID: *w.ClusterID,
		LastIndex: *w.LastIndex, LastTerm: *w.LastTerm, Term: w.Term,
		RaftState: w.RaftState, LeaderID: w.LeaderID, Version: w.Version,
		PolicyRevision: w.PolicyRevision,
	}, nil
}

// stateResult is one GET of a node's /v1/state. status is 0 when no
// response arrived; err is nil only for a 2xx whose body parsed.
type stateResult struct {
	status int
	rtt    time.Duration
	state  NodeState
	err    error
	conn   *tls.ConnectionState // nil unless the answer came over TLS
	// skipped: the candidate has no API; nothing was fetched.
	skipped bool
}

// apiProbe is the reachability view of the fetch.
func (r stateResult) apiProbe() APIProbe {
	if r.skipped {
		return APIProbe{Skipped: true}
	}
	p := APIProbe{OK: r.err == nil, Status: r.status, RTTMS: Ms(r.rtt)}
	if r.err != nil {
		p.Error = r.err.Error()
	}
	return p
}

// fetchState GETs apiURL + /v1/state and parses the answer.
func fetchState(ctx context.Context, client *http.Client, apiURL string, max int64) stateResult {
	if err := ValidateHTTPURL(apiURL); err != nil {
		return stateResult{err: fmt.Errorf("api_url: %v", err)}
	}
	url := strings.TrimRight(apiURL, "/") + StatePath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return stateResult{err: err}
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	res := stateResult{rtt: time.Since(start)}
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	res.conn = resp.TLS
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = fmt.Errorf("GET %s: status %s", url, resp.Status)
		return res
	}
	res.state, res.err = ParseNodeState(resp.Body, max)
	return res
}

// stateFetch is a single in-flight fetch whose result several collectors
// wait for, each under its own deadline.
type stateFetch struct {
	done   chan struct{}
	res    stateResult // written once, before done is closed
	cancel context.CancelFunc
}

// startStateFetch starts the fetch under timeout (inside ctx), minus the
// probe reserve so its own timeout is reported before the sections give up.
func startStateFetch(ctx context.Context, timeout time.Duration, client *http.Client, apiURL string, max int64) *stateFetch {
	ctx, cancelOuter := context.WithTimeout(ctx, timeout)
	pctx, cancelProbe := probeContext(ctx)
	f := &stateFetch{done: make(chan struct{}), cancel: func() { cancelProbe(); cancelOuter() }}
	if apiURL == "" { // a candidate that runs nothing but raft
		f.res = stateResult{skipped: true}
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		f.res = fetchState(pctx, client, apiURL, max)
	}()
	return f
}

// wait returns the fetch's result, or ctx's error if ctx ends first.
func (f *stateFetch) wait(ctx context.Context) (stateResult, error) {
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return stateResult{}, ctx.Err()
	}
}
