package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The first hour with admitd, the way a script drives it: start a node,
// wait for /readyz, and act at once on what it promised.

// readyAnswer is one GET /readyz answer.
type readyAnswer struct {
	status    int
	body      string
	code      string // the error code of a non-200 answer
	Status    string `json:"status"`
	Role      string `json:"role"`
	RaftState string `json:"raft_state"`
	LeaderID  string `json:"leader_id"`
}

func getReadyz(n *node) (readyAnswer, error) {
	resp, err := httpClient.Get(n.url + "/readyz")
	if err != nil {
		return readyAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := readyAnswer{status: resp.StatusCode, body: string(bytes.TrimSpace(raw))}
	if a.status == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			return a, fmt.Errorf("GET /readyz: 200 with a body that is not JSON: %v: %s", err, raw)
		}
		return a, nil
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	a.code = e.Error.Code
	return a, nil
}

// pollReady polls n's /readyz every pollInterval, for at most waitTimeout,
// until it answers 200, the way a start script does, and returns that
// answer and the not-ready answers before it. Before it is ready a node
// either does not answer yet (it is starting) or answers 503 NOT_READY;
// anything else fails the test.
func pollReady(t *testing.T, n *node) (readyAnswer, []readyAnswer) {
	t.Helper()
	var notReady []readyAnswer
	var ready readyAnswer
	eventually(t, n.id+" answering /readyz 200", func() (bool, string) {
		if n.exited() {
			t.Fatalf("%s exited with code %d before it was ready", n.id, n.exit)
		}
		a, err := getReadyz(n)
		switch {
		case err != nil && a.status == 0:
			return false, err.Error() // not listening yet
		case err != nil:
			t.Fatal(err)
		case a.status == http.StatusOK:
			ready = a
			return true, ""
		case a.status != http.StatusServiceUnavailable || a.code != "NOT_READY":
			t.Fatalf("%s /readyz answered %d %s, want 200 or 503 NOT_READY", n.id, a.status, a.body)
		}
		notReady = append(notReady, a)
		return false, fmt.Sprintf("%d %s", a.status, a.body)
	})
	return ready, notReady
}

// joinArgs is an `admitd join` command line for c against server.
func joinArgs(server string, c candidate, extra ...string) []string {
	return append([]string{"join", "--server", server, "--id", c.ID, "--raft-addr", c.RaftAddr,
		"--api-url", c.APIURL}, extra...)
}

// timedCLI is runCLI, timed; a failure to run the binary fails the test.
func timedCLI(t *testing.T, args ...string) (cliResult, time.Duration) {
	t.Helper()
	start := time.Now()
	r, err := runCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return r, time.Since(start)
}

// decodeDecision reads the decision `admitd join -o json` printed.
func decodeDecision(t *testing.T, r cliResult) decision {
	t.Helper()
	var d decision
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("admitd join: exit %d, output is not a decision: %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	return d
}

// cliProc is one admitd CLI process started in the background.
type cliProc struct {
	args     []string
	cmd      *exec.Cmd
	out, err bytes.Buffer
	start    time.Time
	done     chan struct{}
}

// cliBound bounds a background CLI run; its context kills it after that.
const cliBound = 2 * time.Minute

// startCLI starts the binary without waiting for it; t.Cleanup kills it
// if it still runs and waits for it.
func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliBound)
	p := &cliProc{args: args, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, binPath, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for p (bounded by cliBound) and returns how it ended.
func (p *cliProc) wait() (cliResult, time.Duration) {
	<-p.done
	elapsed := time.Since(p.start)
	return cliResult{code: p.cmd.ProcessState.ExitCode(), stdout: p.out.String(), stderr: p.err.String()}, elapsed
}

// firstHourNode is a node with the shipped policies, promotion after
// minHealthyMS, fast promotion rounds and staged joins (the default).
func firstHourNode(t *testing.T, id, policies string, bootstrap bool, join string) *node {
	t.Helper()
	o := stagedOpts(id, policies, 5*time.Minute)
	o.bootstrap, o.join = bootstrap, join
	return startNode(t, o)
}

// checkLeaderReady checks the first 200 of a bootstrapped node.
func checkLeaderReady(t *testing.T, n *node, r readyAnswer, notReady []readyAnswer) {
	t.Helper()
	if r.Status != "ready" || r.Role != "leader" || r.LeaderID != n.id || r.RaftState != "Leader" {
		t.Fatalf("%s /readyz 200: %+v; want ready as the leader", n.id, r)
	}
	t.Logf("%s: %d NOT_READY answers before ready", n.id, len(notReady))
}

// 1. A script: bootstrap n1, wait for its /readyz, then at once read the
// cluster and admit a second node that was waiting for admission.
func TestFirstHourScriptedBootstrapThenJoin(t *testing.T) {
	policies := stagedPolicies(t, 1000)
	n1 := firstHourNode(t, "n1", policies, true, "")
	n2 := firstHourNode(t, "n2", policies, false, "")

	r2, _ := pollReady(t, n2)
	if r2.Role != "waiting for admission" {
		t.Fatalf("fresh n2 /readyz 200 with role %q, want %q (%+v)", r2.Role, "waiting for admission", r2)
	}
	r1, notReady := pollReady(t, n1)
	// No other wait from here on: ready means ready.
	c, err := n1.cluster()
	if err != nil {
		t.Fatalf("GET /v1/cluster right after /readyz 200: %v", err)
	}
	if c.Leader.ID != "n1" || c.suffrage("n1") != "voter" || c.ClusterID == "" {
		t.Fatalf("/v1/cluster right after /readyz 200: leader %q, servers %+v, cluster id %q; want n1 leading with an id",
			c.Leader.ID, c.Servers, c.ClusterID)
	}
	r, elapsed := timedCLI(t, joinArgs(n1.url, n2.candidate(), "-o", "json")...)
	checkLeaderReady(t, n1, r1, notReady)
	d := decodeDecision(t, r)
	if r.code != 0 || !d.Allowed || d.Phase != "promote" || d.Applied == nil || d.Applied.Suffrage != "voter" {
		t.Fatalf("join right after /readyz: exit %d after %s, decision %+v\nstderr: %s", r.code, elapsed, d, r.stderr)
	}
	if !strings.Contains(r.stderr, "is a non-voter") {
		t.Errorf("join did not say it waited for the promotion:\n%s", r.stderr)
	}
	t.Logf("join took %s; stderr:\n%s", elapsed, r.stderr)
	if c := mustCluster(t, n1); c.suffrage("n2") != "voter" || len(c.Staged) != 0 {
		t.Fatalf("after the join: n2 %q, staged %v; want a voter and nothing staged", c.suffrage("n2"), c.Staged)
	}
	// The admitted node is ready again, now as a follower.
	if r2, _ = pollReady(t, n2); r2.Role != "follower" && r2.Role != "leader" {
		t.Fatalf("n2 /readyz after its admission: role %q, want a member's", r2.Role)
	}
}

// stagedWatch polls leader's /v1/cluster until stop is closed and reports
// the most non-voters in stage seen at once.
func stagedWatch(leader *node, stop <-chan struct{}) func() int {
	var mu sync.Mutex
	most := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(pollInterval):
			}
			c, err := leader.cluster()
			if err != nil {
				continue
			}
			nonvoters := 0
			for _, s := range c.Servers {
				if s.Suffrage != "voter" {
					nonvoters++
				}
			}
			mu.Lock()
			most = max(most, len(c.Staged), nonvoters)
			mu.Unlock()
		}
	}()
	return func() int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// 2. Two joins started at the same moment, with one staging slot: the one
// that finds the slot taken asks again until it frees; both end voters.
func TestFirstHourConcurrentJoins(t *testing.T) {
	policies := stagedPolicies(t, 1000)
	n1 := firstHourNode(t, "n1", policies, true, "")
	n2 := firstHourNode(t, "n2", policies, false, "")
	n3 := firstHourNode(t, "n3", policies, false, "")
	for _, n := range []*node{n2, n3} {
		if r, _ := pollReady(t, n); r.Role != "waiting for admission" {
			t.Fatalf("%s /readyz role %q, want waiting for admission", n.id, r.Role)
		}
	}
	r1, notReady := pollReady(t, n1)
	checkLeaderReady(t, n1, r1, notReady)

	stop := make(chan struct{})
	mostStaged := stagedWatch(n1, stop)
	p2 := startCLI(t, joinArgs(n1.url, n2.candidate(), "-o", "json")...)
	p3 := startCLI(t, joinArgs(n1.url, n3.candidate(), "-o", "json")...)
	res2, took2 := p2.wait()
	res3, took3 := p3.wait()
	close(stop)
	most := mostStaged()

	retried := false
	for i, r := range []cliResult{res2, res3} {
		id := []string{"n2", "n3"}[i]
		took := []time.Duration{took2, took3}[i]
		t.Logf("join %s: exit %d after %s; stderr:\n%s", id, r.code, took, r.stderr)
		d := decodeDecision(t, r)
		if r.code != 0 || !d.Allowed || d.Phase != "promote" || d.Applied == nil || d.Applied.Suffrage != "voter" {
			t.Errorf("join %s: exit %d, decision %+v", id, r.code, d)
		}
		if strings.Contains(r.stderr, "asking again") {
			retried = true
			if !strings.Contains(r.stderr, "STAGING_FULL") {
				t.Errorf("join %s asked again, but never for STAGING_FULL:\n%s", id, r.stderr)
			}
		}
	}
	if !retried {
		t.Errorf("neither join printed %q: with one staging slot one of them must have waited for it", "asking again")
	}
	if most > 1 {
		t.Errorf("%d non-voters were seen in stage at once, with --max-staged 1", most)
	}
	c := mustCluster(t, n1)
	if v := c.voters(); !slices.Equal(v, []string{"n1", "n2", "n3"}) || len(c.Staged) != 0 {
		t.Fatalf("after both joins: voters %v, staged %v; want n1 n2 n3 and nothing staged", v, c.Staged)
	}
}

// 3. --no-wait asks once and keeps the old exit codes; without it the
// same answers are asked again until --timeout.
func TestFirstHourNoWaitExitCodes(t *testing.T) {
	t.Run("staging full", func(t *testing.T) {
		// A promotion that cannot happen within the test: n2 keeps the slot.
		policies := stagedPolicies(t, 600000)
		n1 := firstHourNode(t, "n1", policies, true, "")
		n2 := firstHourNode(t, "n2", policies, false, "")
		n3 := firstHourNode(t, "n3", policies, false, "")
		pollReady(t, n2)
		pollReady(t, n3)
		pollReady(t, n1)

		r, elapsed := timedCLI(t, joinArgs(n1.url, n2.candidate(), "-o", "json", "--no-wait")...)
		d := decodeDecision(t, r)
		if r.code != 0 || d.Applied == nil || d.Applied.Suffrage != "nonvoter" {
			t.Fatalf("join n2 --no-wait: exit %d after %s, decision %+v\nstderr: %s", r.code, elapsed, d, r.stderr)
		}

		r, elapsed = timedCLI(t, joinArgs(n1.url, n3.candidate(), "-o", "json", "--no-wait")...)
		d = decodeDecision(t, r)
		t.Logf("join n3 --no-wait: exit %d after %s", r.code, elapsed)
		if r.code != 3 || d.Allowed || d.Permanent || !slices.Contains(d.denyCodes("topology"), "STAGING_FULL") {
			t.Fatalf("join n3 --no-wait with the slot taken: exit %d, decision %+v; want exit 3 on STAGING_FULL\nstderr: %s", r.code, d, r.stderr)
		}
		if strings.Contains(r.stderr, "asking again") || elapsed > 20*time.Second {
			t.Fatalf("join n3 --no-wait asked again or waited (%s):\n%s", elapsed, r.stderr)
		}

		// Without --no-wait, time runs out on the same deny: exit 3 with
		// the last decision.
		r, elapsed = timedCLI(t, joinArgs(n1.url, n3.candidate(), "-o", "json", "--timeout", "3s")...)
		d = decodeDecision(t, r)
		t.Logf("join n3 --timeout 3s: exit %d after %s; stderr:\n%s", r.code, elapsed, r.stderr)
		if r.code != 3 || d.Allowed || !slices.Contains(d.denyCodes("topology"), "STAGING_FULL") {
			t.Fatalf("join n3 --timeout 3s with the slot taken: exit %d, decision %+v; want exit 3 on STAGING_FULL", r.code, d)
		}
		if !strings.Contains(r.stderr, "asking again") || elapsed < 2*time.Second {
			t.Fatalf("join n3 --timeout 3s did not ask again until its timeout (%s):\n%s", elapsed, r.stderr)
		}
		if c := mustCluster(t, n1); c.suffrage("n2") != "nonvoter" || c.suffrage("n3") != "" {
			t.Fatalf("n2 %q, n3 %q; want n2 staged and n3 not a member", c.suffrage("n2"), c.suffrage("n3"))
		}
	})

	// A server that is not ready: a listener that answers 503 NO_LEADER.
	t.Run("not ready", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"NO_LEADER","message":"x"}}`)
		}))
		t.Cleanup(srv.Close)
		c := candidate{ID: "n9", RaftAddr: freeAddr(t), APIURL: "http://" + freeAddr(t)}

		r, elapsed := timedCLI(t, joinArgs(srv.URL, c, "--no-wait")...)
		t.Logf("--no-wait: exit %d after %s, %d calls; stderr:\n%s", r.code, elapsed, calls.Load(), r.stderr)
		if r.code != 1 || calls.Load() != 1 || !strings.Contains(r.stderr, "NO_LEADER") || strings.Contains(r.stderr, "asking again") {
			t.Fatalf("join --no-wait against a 503: exit %d, %d calls; want exit 1 after one call\nstderr: %s", r.code, calls.Load(), r.stderr)
		}

		calls.Store(0)
		r, elapsed = timedCLI(t, joinArgs(srv.URL, c, "--timeout", "2s")...)
		t.Logf("--timeout 2s: exit %d after %s, %d calls; stderr:\n%s", r.code, elapsed, calls.Load(), r.stderr)
		if r.code != 1 || !strings.Contains(r.stderr, "asking again") || calls.Load() < 2 {
			t.Fatalf("join --timeout 2s against a 503: exit %d, %d calls; want exit 1 after asking again\nstderr: %s", r.code, calls.Load(), r.stderr)
		}
		if elapsed < 1500*time.Millisecond || elapsed > 30*time.Second {
			t.Fatalf("join --timeout 2s against a 503 took %s; want about 2 s", elapsed)
		}
	})

	// No answer at all (connection refused) is asked again too.
	t.Run("no answer", func(t *testing.T) {
		c := candidate{ID: "n9", RaftAddr: freeAddr(t), APIURL: "http://" + freeAddr(t)}
		server := "http://" + freeAddr(t) // nothing listens there
		r, elapsed := timedCLI(t, joinArgs(server, c, "--timeout", "2s")...)
		t.Logf("--timeout 2s, nothing listening: exit %d after %s; stderr:\n%s", r.code, elapsed, r.stderr)
		if r.code != 1 || !strings.Contains(r.stderr, "asking again") || elapsed < 1500*time.Millisecond || elapsed > 30*time.Second {
			t.Fatalf("join --timeout 2s with nothing listening: exit %d after %s; want exit 1 after asking again for about 2 s\nstderr: %s",
				r.code, elapsed, r.stderr)
		}
		r, elapsed = timedCLI(t, joinArgs(server, c, "--no-wait")...)
		if r.code != 1 || strings.Contains(r.stderr, "asking again") || elapsed > 20*time.Second {
			t.Fatalf("join --no-wait with nothing listening: exit %d after %s; want exit 1 at once\nstderr: %s", r.code, elapsed, r.stderr)
		}
	})
}

// 4. A node started with --join is ready only once it is a member: at its
// first /readyz 200 its /v1/cluster answers (forwarded to the leader) and
// lists it.
func TestFirstHourServeJoinReadyOnlyAsMember(t *testing.T) {
	// The cluster is up first, as in the operations guide.
	t.Run("cluster up", func(t *testing.T) {
		policies := stagedPolicies(t, 1000)
		n1 := firstHourNode(t, "n1", policies, true, "")
		r1, notReady := pollReady(t, n1)
		checkLeaderReady(t, n1, r1, notReady)
		n2 := firstHourNode(t, "n2", policies, false, n1.url)
		checkJoinedReady(t, n1, n2)
	})
	// The joining node starts before the cluster exists, so it is seen
	// not ready while it cannot be a member.
	t.Run("cluster later", func(t *testing.T) {
		policies := stagedPolicies(t, 1000)
		o1 := stagedOpts("n1", policies, 5*time.Minute)
		o1.bootstrap, o1.httpAddr = true, freeAddr(t)
		n2 := firstHourNode(t, "n2", policies, false, "http://"+o1.httpAddr)
		var first readyAnswer
		eventually(t, "n2 answering /readyz", func() (bool, string) {
			if n2.exited() {
				t.Fatalf("n2 exited with code %d", n2.exit)
			}
			a, err := getReadyz(n2)
			first = a
			return err == nil, fmt.Sprint(err)
		})
		if first.status != http.StatusServiceUnavailable || first.code != "NOT_READY" || !strings.Contains(first.body, "not a member") {
			t.Fatalf("n2 /readyz with no cluster to join: %d %s; want 503 NOT_READY, not a member", first.status, first.body)
		}
		n1 := startNode(t, o1)
		checkJoinedReady(t, n1, n2)
	})
}

// checkJoinedReady polls n's /readyz and, at its first 200, checks that
// n's /v1/cluster answers, forwarded to leader, and lists n.
func checkJoinedReady(t *testing.T, leader, n *node) {
	t.Helper()
	r, notReady := pollReady(t, n)
	resp, err := httpClient.Get(n.url + "/v1/cluster")
	if err != nil {
		t.Fatalf("GET %s /v1/cluster at its first /readyz 200: %v", n.id, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s /v1/cluster at its first /readyz 200: %d %s", n.id, resp.StatusCode, raw)
	}
	var c cluster
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if s := c.suffrage(n.id); s != "voter" && s != "nonvoter" {
		t.Fatalf("%s's /v1/cluster at its first /readyz 200 does not list it: %+v", n.id, c.Servers)
	}
	if fwd := resp.Header.Get("X-Admitd-Forwarded-To"); c.Leader.ID != leader.id || fwd != leader.id {
		t.Fatalf("%s's /v1/cluster: leader %q, forwarded to %q; want %s", n.id, c.Leader.ID, fwd, leader.id)
	}
	if r.Role != "follower" || r.LeaderID != leader.id {
		t.Fatalf("%s /readyz 200: %+v; want a follower of %s", n.id, r, leader.id)
	}
	reasons := map[string]int{}
	for _, a := range notReady {
		reasons[a.body]++
	}
	t.Logf("%s: %d NOT_READY answers before ready: %v", n.id, len(notReady), reasons)
	// The join carries on to a promotion.
	waitVoters(t, leader, 2)
}
