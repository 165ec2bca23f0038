package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/raftglue"
)

const proofToken = "cluster-s3cret"

// pnode is a raft node (fenced unless bootstrapped) and its server, with
// the API on 127.0.0.1.
type pnode struct {
	node *raftglue.Node
	srv  *Server
	url  string
	stop func() // shuts the node down; also run at cleanup
}

func (n *pnode) candidate() facts.Candidate {
	return facts.Candidate{ID: n.node.ID(), RaftAddr: n.node.Addr(), APIURL: n.url}
}

// startPNode starts id on dir (a fresh one when ""); adjust edits its
// config, wrap its handler (both may be nil).
func startPNode(t *testing.T, id, dir string, bootstrap bool, adjust func(*Config), wrap func(http.Handler) http.Handler) *pnode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	hs.Listener.Close()
	hs.Listener = ln
	url := "http://" + ln.Addr().String()
	node, err := raftglue.Open(raftglue.Config{
		ID: id, RaftAddr: "127.0.0.1:0", APIURL: url, DataDir: dir, Fence: true,
		HeartbeatTimeout: TestHeartbeatTimeout, ElectionTimeout: TestElectionTimeout,
		LeaderLeaseTimeout: TestLeaderLeaseTimeout, CommitTimeout: TestCommitTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := admission.Load(context.Background(), admission.DirSource("../../policies"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Node: node, Engine: eng, Token: proofToken}
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	hs.Config.Handler = h
	hs.Start()
	var once sync.Once
	n := &pnode{node: node, srv: srv, url: url, stop: func() {
		once.Do(func() {
			hs.Close()
			_ = srv.Close()
			_ = node.Shutdown()
		})
	}}
	t.Cleanup(n.stop)
	if bootstrap {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

type panswer struct {
	status int
	header http.Header
	body   []byte
}

var pclient = &http.Client{Timeout: 30 * time.Second}

// pcall sends a request and, while the answer is 503 NO_LEADER, asks
// again for up to ten seconds: that answer means nothing was decided (no
// leader known, or leadership gone before any facts were read), so a
// client asks again once a leader is elected; see send in secure_test.go.
func pcall(t *testing.T, method, url string, body []byte, header http.Header) panswer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := pcallOnce(t, method, url, body, header)
		var e api.ErrorBody
		if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &e) != nil || e.Error.Code != "NO_LEADER" ||
			time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pcallOnce(t *testing.T, method, url string, body []byte, header http.Header) panswer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := pclient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return panswer{status: resp.StatusCode, header: resp.Header, body: b}
}

func withBearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func admittedFor(id, decision string, expires time.Time) Admitted {
	return Admitted{ClusterID: "c1", LeaderID: "n1", CandidateID: id, DecisionID: decision, ExpiresMS: expires.UnixMilli()}
}

// The proof verifies under the same token, for the node it names, until
// it expires; any field changed, another token, another node or a late
// arrival fails it.
func TestAdmittedProofVerifies(t *testing.T) {
	now := time.Now()
	fields := admittedFor("n2", "d1", now.Add(admittedValidity))
	good := signAdmitted(proofToken, fields)
	if err := verifyAdmitted(proofToken, "n2", good, now); err != nil {
		t.Fatalf("a good proof is refused: %v", err)
	}
	upper := good
	upper.Proof = strings.ToUpper(good.Proof)
	if err := verifyAdmitted(proofToken, "n2", upper, now); err != nil {
		t.Errorf("the same MAC in upper-case hex is refused: %v", err)
	}
	refused := map[string]func(*Admitted){
		"cluster_id":      func(a *Admitted) { a.ClusterID = "c2" },
		"leader_id":       func(a *Admitted) { a.LeaderID = "n3" },
		"candidate_id":    func(a *Admitted) { a.CandidateID = "n2x" },
		"decision_id":     func(a *Admitted) { a.DecisionID = "d2" },
		"expiry later":    func(a *Admitted) { a.ExpiresMS += 60_000 },
		"expiry earlier":  func(a *Admitted) { a.ExpiresMS-- },
		"proof flipped":   func(a *Admitted) { a.Proof = flipHex(a.Proof) },
		"proof truncated": func(a *Admitted) { a.Proof = a.Proof[:len(a.Proof)-2] },
		"proof extended":  func(a *Admitted) { a.Proof += "00" },
		"proof empty":     func(a *Admitted) { a.Proof = "" },
		"proof not hex":   func(a *Admitted) { a.Proof = "zz" + a.Proof[2:] },
		"proof is token":  func(a *Admitted) { a.Proof = proofToken },
		"other token":     func(a *Admitted) { *a = signAdmitted("other-token", fields) },
		"empty token":     func(a *Admitted) { *a = signAdmitted("", fields) },
	}
	for name, alter := range refused {
		a := good
		alter(&a)
		if err := verifyAdmitted(proofToken, "n2", a, now); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	// A correct proof for another node, and one that arrives too late.
	if err := verifyAdmitted(proofToken, "n2", signAdmitted(proofToken, admittedFor("n3", "d1", now.Add(time.Minute))), now); !errors.Is(err, ErrUnauthorized) ||
		!strings.Contains(err.Error(), `for candidate "n3"`) {
		t.Errorf("another node's proof: %v", err)
	}
	if err := verifyAdmitted(proofToken, "n2", good, now.Add(admittedValidity+time.Millisecond)); !errors.Is(err, ErrUnauthorized) ||
		!strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired proof: %v", err)
	}
	// Length prefixes: moving a boundary between fields changes the message.
	a, b := Admitted{ClusterID: "ab", LeaderID: "c"}, Admitted{ClusterID: "a", LeaderID: "bc"}
	if bytes.Equal(admittedMessage(a), admittedMessage(b)) {
		t.Error("two bodies share a canonical message")
	}
}

func flipHex(s string) string {
	c := "0"
	if s[0] == '0' {
		c = "1"
	}
	return c + s[1:]
}

// The ledger refuses a decision id twice, and the one read back from
// admitted.json; expired ids are forgotten; a full memory refuses rather
// than forgets.
func TestAdmittedLedgerSingleUse(t *testing.T) {
	now := time.Now()
	l := newAdmittedLedger(mustJSON(admittedFor("n2", "from-disk", now)))
	if err := l.check("from-disk", now); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the recorded admission replayed: %v", err)
	}
	if err := l.check("d1", now); err != nil {
		t.Fatal(err)
	}
	l.record("d1", now.Add(admittedValidity).UnixMilli())
	if err := l.check("d1", now); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a replay: %v", err)
	}
	later := now.Add(admittedValidity + time.Second)
	if err := l.check("d1", later); err != nil || len(l.used) != 0 {
		t.Fatalf("an expired id is still held (%d held): %v", len(l.used), err)
	}
	for i := range admittedUsedMax {
		l.record(strings.Repeat("x", i+1), later.Add(time.Minute).UnixMilli())
	}
	if err := l.check("new", later); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a full ledger: %v", err)
	}
	if l := newAdmittedLedger([]byte("not json")); len(l.persisted) != 0 {
		t.Fatal("a garbled note names an admission")
	}
}

// A fenced node with a token opens its fence on a good proof only, once,
// and refuses it again after a restart, read back from its data directory;
// the cluster token as a bearer token opens nothing.
func TestAdmittedEndpointTakesProofOnce(t *testing.T) {
	dir := t.TempDir()
	n := startPNode(t, "n2", dir, false, nil, nil)
	now := time.Now()
	post := func(n *pnode, a any, h http.Header) panswer {
		return pcall(t, http.MethodPost, n.url+AdmittedPath, mustJSON(a), h)
	}
	refuse := func(what string, r panswer) {
		t.Helper()
		var e api.ErrorBody
		if r.status != http.StatusUnauthorized || json.Unmarshal(r.body, &e) != nil || e.Error.Code != "UNAUTHENTICATED" {
			t.Fatalf("%s: %d %s, want 401 UNAUTHENTICATED", what, r.status, r.body)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", what, r.header.Get("WWW-Authenticate"))
		}
		if !n.node.Fenced() {
			t.Fatalf("%s opened the fence", what)
		}
	}
	refuse("the token as bearer, no proof", post(n, admittedFor("n2", "d0", now.Add(time.Minute)), withBearer(proofToken)))
	refuse("a proof for n3", post(n, signAdmitted(proofToken, admittedFor("n3", "d1", now.Add(time.Minute))), nil))
	refuse("an expired proof", post(n, signAdmitted(proofToken, admittedFor("n2", "d1", now.Add(-time.Second))), nil))
	refuse("another token's proof", post(n, signAdmitted("other", admittedFor("n2", "d1", now.Add(time.Minute))), nil))

	good := signAdmitted(proofToken, admittedFor("n2", "d1", now.Add(time.Minute)))
	if r := post(n, good, nil); r.status != http.StatusOK || n.node.Fenced() {
		t.Fatalf("a good proof: %d %s, fenced %v", r.status, r.body, n.node.Fenced())
	}
	if r := post(n, good, nil); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "already accepted") {
		t.Fatalf("a replay: %d %s", r.status, r.body)
	}

	// Restarted on the same data directory: the fence stays open, the
	// admission is read back and its replay refused while still unexpired.
	n.stop()
	n = startPNode(t, "n2", dir, false, nil, nil)
	if n.node.Fenced() {
		t.Fatal("the recorded admission did not survive the restart")
	}
	if r := post(n, good, nil); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "already opened") {
		t.Fatalf("a replay after a restart: %d %s", r.status, r.body)
	}
	if r := post(n, signAdmitted(proofToken, admittedFor("n2", "d2", now.Add(time.Minute))), nil); r.status != http.StatusOK {
		t.Fatalf("a new proof: %d %s", r.status, r.body)
	}
}

// admittedCapture records the requests to /v1/admitted a handler receives.
type admittedCapture struct {
	mu   sync.Mutex
	reqs []capturedReq
}

type capturedReq struct {
	header http.Header
	body   []byte
}

func (c *admittedCapture) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == AdmittedPath {
			b, _ := io.ReadAll(r.Body)
			c.mu.Lock()
			c.reqs = append(c.reqs, capturedReq{header: r.Header.Clone(), body: b})
			c.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h.ServeHTTP(w, r)
	})
}

func (c *admittedCapture) all() []capturedReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedReq(nil), c.reqs...)
}

// In a token cluster the leader tells a fenced candidate it is admitted
// with a proof, never the token; what the candidate saw opens no other
// node and passes no guard.
func TestLeaderSendsProofNotToken(t *testing.T) {
	leader := startPNode(t, "n1", "", true, nil, nil)
	var seen admittedCapture
	cand := startPNode(t, "n2", "", false, nil, seen.wrap)
	other := startPNode(t, "n3", "", false, nil, nil)

	r := pcall(t, http.MethodPost, leader.url+"/v1/admissions",
		mustJSON(map[string]any{"candidate": cand.candidate()}), withBearer(proofToken))
	if r.status != http.StatusOK || cand.node.Fenced() {
		t.Fatalf("admission: %d %s (fenced %v)", r.status, r.body, cand.node.Fenced())
	}
	reqs := seen.all()
	if len(reqs) != 1 {
		t.Fatalf("%d requests to %s, want 1", len(reqs), AdmittedPath)
	}
	got := reqs[0]
	if v := got.header.Values("Authorization"); len(v) != 0 {
		t.Fatalf("the candidate received Authorization %q", v)
	}
	if strings.Contains(string(got.body), proofToken) || strings.Contains(headerText(got.header), proofToken) {
		t.Fatalf("the token reached the candidate: %s", got.body)
	}
	var a Admitted
	if err := json.Unmarshal(got.body, &a); err != nil || a.CandidateID != "n2" || a.Proof == "" || a.LeaderID != "n1" ||
		a.ClusterID != leader.node.ClusterID() {
		t.Fatalf("admitted body %s (%v)", got.body, err)
	}
	if left := time.Until(time.UnixMilli(a.ExpiresMS)); left <= 0 || left > admittedValidity {
		t.Fatalf("expiry %s from now", left)
	}

	for _, target := range []*pnode{cand, other} {
		if r := pcall(t, http.MethodPost, target.url+AdmittedPath, got.body, got.header); r.status != http.StatusUnauthorized {
			t.Fatalf("the captured notice replayed to %s: %d %s", target.node.ID(), r.status, r.body)
		}
	}
	if !other.node.Fenced() {
		t.Fatal("the replay opened n3's fence")
	}
	for _, v := range capturedValues(got) {
		if r := pcall(t, http.MethodGet, leader.url+"/v1/decisions", nil, withBearer(v)); r.status != http.StatusUnauthorized {
			t.Fatalf("captured %q passes the guard: %d", v, r.status)
		}
	}
}

func headerText(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

// capturedValues is everything of a captured request one could try as a
// bearer token: the body, each of its string values, each header value.
func capturedValues(c capturedReq) []string {
	vals := []string{string(c.body)}
	var m map[string]any
	_ = json.Unmarshal(c.body, &m)
	for _, v := range m {
		if s, ok := v.(string); ok {
			vals = append(vals, s)
		}
	}
	for _, vs := range c.header {
		vals = append(vals, vs...)
	}
	return vals
}
