package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/testutil"
)

// fakeNode is an API that answers /v1/state, and /v1/cluster from a
// script of answers (the last one again once they run out). It records
// each request's path and Authorization header.
type fakeNode struct {
	mu       sync.Mutex
	clusters []func(http.ResponseWriter)
	calls    int // /v1/cluster answers given
	seen     []string
	auth     []string
}

func (f *fakeNode) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Method+" "+r.URL.Path)
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		var answer func(http.ResponseWriter)
		if r.URL.Path == "/v1/cluster" && len(f.clusters) > 0 {
			answer = f.clusters[min(f.calls, len(f.clusters)-1)]
			f.calls++
		}
		f.mu.Unlock()
		switch r.URL.Path {
		case "/v1/state":
			_ = json.NewEncoder(w).Encode(facts.NodeState{NodeID: "n1", Initialized: true, RaftState: "Leader", LeaderID: "n1", Term: 2})
		case "/v1/cluster":
			if answer == nil {
				answer = clusterOf(voter("n1", true))
			}
			answer(w)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"NOT_FOUND","message":"no such path"}}`))
		}
	})
}

func (f *fakeNode) requests() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...), append([]string(nil), f.auth...)
}

func startFake(t *testing.T, clusters ...func(http.ResponseWriter)) (*fakeNode, string) {
	t.Helper()
	f := &fakeNode{clusters: clusters}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func voter(id string, healthy bool) facts.Server {
	return facts.Server{ID: id, Address: "127.0.0.1:1", Suffrage: facts.Voter, Healthy: healthy}
}

// clusterOf answers a /v1/cluster with these servers; a non-voter named
// in staged is in stage, with its progress.
func clusterOf(servers ...facts.Server) func(http.ResponseWriter) {
	return stagedCluster(nil, servers...)
}

func stagedCluster(staged []string, servers ...facts.Server) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		v := api.ClusterView{Topology: facts.Topology{Section: facts.Section{Collected: true}, ConfigIndex: 7,
			Leader: facts.Leader{ID: "n1"}, Servers: servers, Staged: staged}}
		for _, id := range staged {
			v.Staging = append(v.Staging, admission.StageProgress{ID: id, AdmissionID: "a-" + id, Deadline: time.Now().Add(time.Minute),
				CatchUp: &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 3, HealthyForMS: 1500},
				Reason:  "catch_up: NOT_HEALTHY_LONG_ENOUGH: healthy for 1.5 s of 10 s"})
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

func unavailable(code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"not yet"}}`))
	}
}

// Without --wait-voters, status reads the node and its cluster once.
func TestStatusOnce(t *testing.T) {
	fake, url := startFake(t)
	code, out, errOut := runCmd(t, "", "status", "--server", url)
	if code != exitOK || !strings.Contains(out, "node n1  Leader") || !strings.Contains(out, "configuration index 7") || errOut != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if seen, _ := fake.requests(); strings.Join(seen, ",") != "GET /v1/state,GET /v1/cluster" {
		t.Fatalf("requests %v", seen)
	}
}

// The wait goes through no leader, a staged non-voter and an unhealthy
// voter, and ends when 3 voters are healthy and nothing is staged.
func TestStatusWaitVoters(t *testing.T) {
	fake, url := startFake(t,
		unavailable("NO_LEADER"),
		stagedCluster([]string{"n2"}, voter("n1", true), facts.Server{ID: "n2", Suffrage: facts.Nonvoter}),
		// Two voters is not three: n3 joins after n2.
		clusterOf(voter("n1", true), voter("n2", true)),
		clusterOf(voter("n1", true), voter("n2", true), voter("n3", false)),
		clusterOf(voter("n1", true), voter("n2", true), voter("n3", true)),
	)
	start := time.Now()
	code, out, errOut := runCmd(t, "", "status", "--server", url, "--wait-voters", "3", "--timeout", "30s")
	if code != exitOK {
		t.Fatalf("exit %d after %s\nstdout: %s\nstderr: %s", code, time.Since(start), out, errOut)
	}
	for _, want := range []string{
		"waiting for 3 voters: no answer yet: HTTP 503 NO_LEADER",
		"waiting for 3 voters: 1 of 3 voters (n1); staged non-voters not yet promoted: n2\n",
		"waiting for 3 voters: 2 of 3 voters (n1, n2)\n",
		"waiting for 3 voters: voters not healthy: n3\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "node n1  Leader") || !strings.Contains(out, "n3") {
		t.Errorf("the status after the wait:\n%s", out)
	}
	if seen, _ := fake.requests(); len(seen) != 7 || seen[5] != "GET /v1/state" {
		t.Errorf("requests %v: want 5 polls of /v1/cluster, then the status", seen)
	}
}

// The wait tolerates a node that does not listen yet.
func TestStatusWaitVotersUntilTheNodeListens(t *testing.T) {
	addr := testutil.FreeAddr(t)
	result := make(chan string, 1)
	go func() {
		code, out, errOut := runCmd(t, "", "status", "--server", "http://"+addr, "--wait-voters", "1", "--timeout", "20s")
		result <- fmt.Sprintf("%d\n%s\n%s", code, out, errOut)
	}()
	time.Sleep(1200 * time.Millisecond) // a few refused polls first
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port was taken meanwhile: %v", err)
	}
	fake := &fakeNode{}
	srv := &http.Server{Handler: fake.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	select {
	case r := <-result:
		if !strings.HasPrefix(r, "0\n") || !strings.Contains(r, "connection refused") || !strings.Contains(r, "node n1") {
			t.Fatalf("exit, stdout, stderr:\n%s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status --wait-voters did not end")
	}
}

// Time runs out: exit 1, naming what was missing and the staged node's
// last decision; nothing on stdout.
func TestStatusWaitVotersTimeout(t *testing.T) {
	_, url := startFake(t, stagedCluster([]string{"n2"}, voter("n1", true), facts.Server{ID: "n2", Suffrage: facts.Nonvoter}))
	start := time.Now()
	code, out, errOut := runCmd(t, "", "status", "--server", url, "--wait-voters", "3", "--timeout", "1500ms")
	elapsed := time.Since(start)
	want := "admitd: --wait-voters 3: not reached within 1.5s: 1 of 3 voters (n1); staged non-voters not yet promoted: n2; n2's last promote decision: catch_up: NOT_HEALTHY_LONG_ENOUGH"
	if code != exitError || !strings.Contains(errOut, want) || out != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s\nwant %q", code, out, errOut, want)
	}
	if strings.Count(errOut, "waiting for 3 voters") != 1 {
		t.Errorf("an unchanged state printed more than once:\n%s", errOut)
	}
	if elapsed < 1400*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("took %s, want about 1.5s", elapsed)
	}
	// No answer at all until the end: the last error is the reason.
	code, _, errOut = runCmd(t, "", "status", "--server", "http://"+testutil.FreeAddr(t), "--wait-voters", "1", "--timeout", "1s")
	if code != exitError || !strings.Contains(errOut, "not reached within 1s: no answer yet: ") || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("nothing listening: exit %d: %s", code, errOut)
	}
}

// An answer that asking again will not change ends the wait at once.
func TestStatusWaitVotersStopsOnPermanentError(t *testing.T) {
	_, url := startFake(t, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"UNAUTHENTICATED","message":"no token"}}`))
	})
	start := time.Now()
	code, _, errOut := runCmd(t, "", "status", "--server", url, "--wait-voters", "3", "--timeout", "20s")
	if code != exitError || !strings.Contains(errOut, "UNAUTHENTICATED") || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s: %s", code, time.Since(start), errOut)
	}
}

// On a terminal the progress is one line, rewritten, with the staged
// non-voters' catch-up and the time left, and cleared at the end.
func TestStatusWaitVotersOnATerminal(t *testing.T) {
	_, url := startFake(t,
		stagedCluster([]string{"n2"}, voter("n1", true), facts.Server{ID: "n2", Suffrage: facts.Nonvoter}),
		clusterOf(voter("n1", true), voter("n2", true)))
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := waitVoters(ctx, client.New(5*time.Second), url, 2, 10*time.Second, &progress, true); err != nil {
		t.Fatal(err)
	}
	out := progress.String()
	want := "\r\033[Kwaiting for 2 voters: 1 of 2 voters (n1); staged non-voters not yet promoted: n2 (n2: lag 3, healthy 1.5 s); 10s left"
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "\r\033[K") || strings.Contains(out, "\n") {
		t.Fatalf("terminal progress %q, want it to start with %q and end cleared", out, want)
	}
}
