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
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
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
