package facts

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testConfig keeps sections short so hanging cases finish quickly.
func testConfig() CollectConfig {
	return CollectConfig{
		Overall:      1600 * time.Millisecond,
		Reachability: 800 * time.Millisecond,
		InitState:    800 * time.Millisecond,
		Topology:     800 * time.Millisecond,
		DialTimeout:  200 * time.Millisecond,
	}
}

func goodState(id string) NodeState {
	return NodeState{
		NodeID: id, RaftAddr: "127.0.0.1:1", APIURL: "http://127.0.0.1:2",
		Initialized: false, ClusterID: "", LastIndex: 0, LastTerm: 0,
		RaftState: "Follower", Version: "0.1.0", PolicyRevision: "sha256:abc",
	}
}

// stateServer serves handler on 127.0.0.1 and counts /v1/state requests.
type stateServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newStateServer(t *testing.T, handler http.HandlerFunc) *stateServer {
	t.Helper()
	s := &stateServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == StatePath {
			s.hits.Add(1)
		}
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func jsonHandler(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

func rawHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// blockingHandler hangs until the request is abandoned or the test ends.
// Its cleanup is registered after the server's, so it runs first and
// server.Close does not wait on a blocked handler.
func blockingHandler(t *testing.T) (http.HandlerFunc, func()) {
	block := make(chan struct{})
	h := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}
	return h, func() { close(block) }
}

// raftListener accepts TCP connections and closes them at once.
func raftListener(t *testing.T) string {
	t.Helper()
	return closingListener(t, "")
}

// closingListener writes payload (maybe none) to every connection it
// accepts and closes it, until the test ends.
func closingListener(t *testing.T, payload string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if payload != "" {
				_, _ = c.Write([]byte(payload))
			}
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// raftServer starts a fresh, never-bootstrapped in-process raft server
// whose LocalID is id (newRPCProbeNode: TCP transport on 127.0.0.1:0,
// in-memory stores, short timeouts, null logger, stopped in t.Cleanup)
// and returns its raft address. A candidate at it answers the raft probe
// as a node that has never joined a cluster.
func raftServer(t *testing.T, id string) string {
	t.Helper()
	return newRPCProbeNode(t, id).addr()
}

// joinNonvoter adds n to leader's cluster as a non-voter and waits until
// it has the leader's whole log in the leader's term. The cluster keeps a
// single voter, so nothing n does can start an election or move the term.
func joinNonvoter(t *testing.T, leader, n *rpcProbeNode) {
	t.Helper()
	if err := leader.r.AddNonvoter(raft.ServerID(n.id), n.trans.LocalAddr(), 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("add non-voter %s: %v", n.id, err)
	}
	rpcProbeEventually(t, n.id+" to catch up", func() bool {
		return n.r.LastIndex() == leader.r.LastIndex() && n.r.CurrentTerm() == leader.r.CurrentTerm()
	})
}

// raftLeaderLog is the real leader's log position, as a LeaderLog.
type raftLeaderLog struct {
	leader    *rpcProbeNode
	clusterID string
}

func (l raftLeaderLog) ClusterID() string { return l.clusterID }
func (l raftLeaderLog) LastIndex() uint64 { return l.leader.r.LastIndex() }
func (l raftLeaderLog) Term() uint64      { return l.leader.r.CurrentTerm() }

// raftView is a ClusterView of the real leader's term and last index,
// with the leader as the local node and members as given.
func raftView(clusterID string, leader *rpcProbeNode, members ...ConfigServer) *fakeView {
	servers := append([]ConfigServer{{ID: leader.id, Address: leader.addr(), Suffrage: Voter}}, members...)
	return &fakeView{cfg: ClusterConfig{
		ClusterID: clusterID, Index: leader.r.GetConfiguration().Index(), Term: leader.r.CurrentTerm(),
		SelfID: leader.id, LeaderID: leader.id, LeaderAddr: leader.addr(),
		Servers: servers, LastIndex: leader.r.LastIndex(),
	}}
}

// countingTransport fails every HTTP request and counts them, to prove a
// collection made none.
type countingTransport struct{ calls atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return nil, errors.New("no HTTP call was expected: " + r.URL.String())
}

// deadAddr is a 127.0.0.1 port nothing listens on any more.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentListener accepts TCP connections and never writes a byte.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// fakeView is the topology collector's input. If block is set it ignores
// ctx and waits on block, to prove Gather does not wait for it.
type fakeView struct {
	cfg   ClusterConfig
	err   error
	block chan struct{}
}

func (v *fakeView) ClusterConfig(ctx context.Context) (ClusterConfig, error) {
	if v.block != nil {
		<-v.block
	}
	return v.cfg, v.err
}

// soloView is a one-node cluster whose leader is the local node.
func soloView() *fakeView {
	return &fakeView{cfg: ClusterConfig{
		ClusterID: "c1", Index: 7, Term: 2, SelfID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7401",
		Servers: []ConfigServer{{ID: "n1", Address: "127.0.0.1:7401", Suffrage: Voter}},
	}}
}

func candidate(raftAddr, apiURL string) Candidate {
	return Candidate{ID: "n4", RaftAddr: raftAddr, APIURL: apiURL}
}

// assertUncollected checks a failed section carries an error and nothing
// else a policy could mistake for a fact.
func assertUncollected[T any, P sectionPtr[T]](t *testing.T, name string, p P) {
	t.Helper()
	if p == nil {
		t.Fatalf("%s: nil section", name)
	}
	h := *p.head()
	if h.Collected || h.Error == "" {
		t.Fatalf("%s: want collected=false with an error, got %+v", name, h)
	}
	cp := *p
	*P(&cp).head() = Section{}
	if !reflect.DeepEqual(cp, *new(T)) {
		t.Fatalf("%s: uncollected section has non-zero fields: %+v", name, cp)
	}
}

func assertCollected(t *testing.T, name string, s Section) {
	t.Helper()
	if !s.Collected || s.Error != "" {
		t.Fatalf("%s: want collected with no error, got %+v", name, s)
	}
}

var errView = errors.New("not the leader")
