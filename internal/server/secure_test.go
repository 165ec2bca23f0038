package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
	"github.com/admitd/admitd/raftglue"
)

// nodeOpts are the access-control settings of a test node.
type nodeOpts struct {
	token          string
	ca             *tlstest.CA // TLS with mTLS when set; the node's cert names spiffe://test/admitd/<certID>
	certID         string      // identity in the node's certificate; default its id
	rate           float64
	burst          int
	collectTimeout time.Duration
}

// startNodeWith is startNode with nodeOpts.
func startNodeWith(t *testing.T, id string, bootstrap bool, o nodeOpts) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	hs.Listener.Close()
	hs.Listener = ln
	cfg := server.Config{Engine: loadEngine(t), DecisionsKept: 8, Token: o.token,
		AdmissionRate: o.rate, AdmissionBurst: o.burst}
	if o.collectTimeout > 0 {
		cfg.Collect = facts.CollectConfig{Overall: o.collectTimeout, Reachability: o.collectTimeout / 2,
			InitState: o.collectTimeout / 2, Topology: o.collectTimeout / 2}
	}
	scheme := "http"
	if o.ca != nil {
		scheme = "https"
		hs.TLS, cfg.ClientTLS = nodeTLS(t, o.ca, firstOf(o.certID, id))
		cfg.Collect.HTTPClient = facts.NewHTTPClient(cfg.ClientTLS)
		cfg.Collect.TLSRequired = true
	}
	url := scheme + "://" + ln.Addr().String()
	cfg.Node, err = raftglue.Open(raftglue.Config{
		ID: id, RaftAddr: "127.0.0.1:0", APIURL: url, DataDir: t.TempDir(),
		HeartbeatTimeout: server.TestHeartbeatTimeout, ElectionTimeout: server.TestElectionTimeout,
		LeaderLeaseTimeout: server.TestLeaderLeaseTimeout, CommitTimeout: server.TestCommitTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs.Config.Handler = srv.Handler()
	if o.ca != nil {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(func() {
		hs.Close()
		_ = cfg.Node.Shutdown()
	})
	if bootstrap {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cfg.Node.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &testNode{node: cfg.Node, srv: srv, http: hs}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var certSerial atomic.Int64 // keeps certificate file names apart

// nodeTLS is a node's server (mTLS) and client configuration.
func nodeTLS(t *testing.T, ca *tlstest.CA, certID string) (*tls.Config, *tls.Config) {
	t.Helper()
	pair := ca.Issue(t, fmt.Sprintf("node-%s-%d", certID, certSerial.Add(1)), []string{tlstest.SPIFFE(certID)}, nil)
	srv, err := tlsconfig.Server(pair.Cert, pair.Key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := tlsconfig.Client(pair.Cert, pair.Key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cl
}

// httpsClient trusts ca and presents pair when given.
func httpsClient(t *testing.T, ca *tlstest.CA, pair *tlstest.Pair) *http.Client {
	t.Helper()
	var cert, key string
	if pair != nil {
		cert, key = pair.Cert, pair.Key
	}
	cfg, err := tlsconfig.Client(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// noLeaderPatience bounds how long send asks again while the answer is
// 503 NO_LEADER.
const noLeaderPatience = 10 * time.Second

// send is do with a client and headers; a transport error is returned.
//
// An answer of 503 NO_LEADER is asked again, every 50 ms for up to
// noLeaderPatience: it means nothing was decided (the node asked knew no
// leader to forward to, or was no longer the leader before it read any
// facts; a change that lost its leader answers LEADERSHIP_LOST or
// OUTCOME_UNKNOWN instead), so asking again once a leader is elected is
// what any client does, and a leader lost to a loaded machine's scheduling
// between two steps of a test is not what the test is about. A body that
// cannot be read twice (a streaming one) is sent once. sendOnce asks once,
// for the tests that expect NO_LEADER.
func send(c *http.Client, method, url string, body io.Reader, header http.Header) (response, error) {
	var payload []byte
	switch b := body.(type) {
	case nil:
	case *strings.Reader, *bytes.Reader, *bytes.Buffer:
		var err error
		if payload, err = io.ReadAll(b); err != nil {
			return response{}, err
		}
	default:
		return sendOnce(c, method, url, body, header)
	}
	deadline := time.Now().Add(noLeaderPatience)
	for {
		var again io.Reader
		if body != nil {
			again = bytes.NewReader(payload)
		}
		r, err := sendOnce(c, method, url, again, header)
		if err != nil || !noLeader(r) || time.Now().After(deadline) {
			return r, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noLeader reports whether r is the contract's 503 NO_LEADER.
func noLeader(r response) bool {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	return r.status == http.StatusServiceUnavailable && json.Unmarshal(r.body, &e) == nil && e.Error.Code == "NO_LEADER"
}

// sendOnce is send without asking again.
func sendOnce(c *http.Client, method, url string, body io.Reader, header http.Header) (response, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func mustSend(t *testing.T, c *http.Client, method, url string, body io.Reader, header http.Header) response {
	t.Helper()
	r, err := send(c, method, url, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mustSendOnce is mustSend without asking again on NO_LEADER.
func mustSendOnce(t *testing.T, c *http.Client, method, url string, body io.Reader, header http.Header) response {
	t.Helper()
	r, err := sendOnce(c, method, url, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpServer serves h on 127.0.0.1 until the test ends.
func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
