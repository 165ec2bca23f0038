package e2e

// Fault tests: crashes at exact points of an admission (failpoints, see
// internal/failpoint), candidates that die, voters that stop answering,
// concurrent mixed requests, and wiped data dirs. Each checks both the
// answer and the raft configuration the leader reports afterwards.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failpoints is the environment that arms spec in one node.
func failpoints(spec string) []string {
	return []string{"ADMITD_FAILPOINTS=" + spec}
}

// crashAt arms name to let the two adds of newClusterFrom through and exit
// at the third, like a kill -9 at that exact point.
func crashAt(name string) []string {
	return failpoints(name + "=2*off->exit(137)")
}

// requireLeader fails unless want is the leader all nodes agree on: the
// failpoints are armed on want only.
func requireLeader(t *testing.T, want *node, nodes ...*node) {
	t.Helper()
	if got := waitLeader(t, nodes...); got != want {
		t.Fatalf("leader is %s, want %s (leadership moved while the cluster formed)", got.id, want.id)
	}
}

// restartClean restarts a crashed node on its data dir, without failpoints,
// as a supervisor would.
func restartClean(t *testing.T, n *node) *node {
	t.Helper()
	o := n.opts
	o.env, o.bootstrap, o.join = nil, false, ""
	again := startNode(t, o)
	waitUp(t, again)
	return again
}

// requireServers checks that the configuration lists exactly ids, each
// once and as a voter.
func requireServers(t *testing.T, c cluster, ids ...string) {
	t.Helper()
	var got []string
	for _, s := range c.Servers {
		got = append(got, s.ID+":"+s.Suffrage)
	}
	slices.Sort(got)
	var want []string
	for _, id := range ids {
		want = append(want, id+":voter")
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("configuration %v, want %v", got, want)
	}
}

// namesItself says the leader refused to decide on itself: the candidate
// is the leader, so certainly a member.
func namesItself(r admitResult) bool {
	return r.status == http.StatusBadRequest && strings.Contains(r.body, "names this node")
}

// requireCrash waits for n to exit with 137 at the failpoint name.
func requireCrash(t *testing.T, n *node, name string) {
	t.Helper()
	if code := waitExit(t, n, waitTimeout); code != 137 {
		t.Fatalf("%s exited %d, want 137 from the failpoint", n.id, code)
	}
	if want := "failpoint " + name + ": exit(137)"; !strings.Contains(n.log(), want) {
		t.Fatalf("%s log lacks %q", n.id, want)
	}
}

// 1a. The leader crashes after deciding and before AddVoter: the caller
// gets an error and no decision, the configuration has no trace of the
// candidate, and once the crashed voter is back a retry admits it once.
func TestFaultLeaderCrashBeforeAdd(t *testing.T) {
	t.Parallel()
	nodes := newClusterFrom(t, opts{id: "n1", env: crashAt("admit/before-add")}, "n2", "n3")
	n1 := nodes[0]
	requireLeader(t, n1, nodes...)
	c := freshNode(t, "c4")
	before := mustCluster(t, n1)

	via := nodes[1] // a follower: it relays the leader's failure as a 5xx
	r, err := sendAdmission(via, c.candidate(), false)
	if err == nil && (r.status < 500 || r.decision.DecisionID != "") {
		t.Fatalf("status %d, want a 5xx without a decision: %s", r.status, r.body)
	}
	t.Logf("answer while the leader crashed: %d %v %s", r.status, err, strings.TrimSpace(r.body))
	requireCrash(t, n1, "admit/before-add")

	survivors := nodes[1:]
	leader := waitLeader(t, survivors...)
	after := mustCluster(t, leader)
	requireServers(t, after, "n1", "n2", "n3")
	if after.ConfigIndex != before.ConfigIndex {
		t.Errorf("config index %d, want %d: the configuration changed", after.ConfigIndex, before.ConfigIndex)
	}
	if s := mustState(t, c); s.Initialized || s.ClusterID != "" {
		t.Errorf("candidate state %+v, want uninitialized", s)
	}

	// n1 still counts as a voter and does not answer: a fourth voter is
	// unsafe until it is back.
	r = admit(t, via, c.candidate(), false)
	if r.status != http.StatusForbidden || r.decision.Permanent {
		t.Fatalf("retry with n1 down: %d %s, want a non-permanent 403", r.status, r.body)
	}
	requireDenied(t, r.decision, "topology", "QUORUM_UNSAFE")

	back := restartClean(t, n1)
	live := append([]*node{back}, survivors...)
	leader = waitLeader(t, live...)
	waitVoters(t, leader, 3)
	admitOK(t, via, c, "retry with n1 back")
	leader = waitLeader(t, append(live, c)...)
	waitFSM(t, c, leader)
	requireServers(t, waitVoters(t, leader, 4), "c4", "n1", "n2", "n3")
}

// 1b. The leader crashes after the configuration change committed and
// before anyone hears of it. A new leader has the candidate exactly once;
// the candidate's `serve --join` loop, which only knows the dead leader,
// finds itself in the configuration and stops; a second request changes
// nothing; and once the crashed node is back all four voters are healthy.
func TestFaultLeaderCrashAfterCommit(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"raftglue/before-metadata", "admit/after-add"} {
		t.Run(strings.ReplaceAll(point, "/", "_"), func(t *testing.T) {
			t.Parallel()
			leaderCrashAfterCommit(t, point)
		})
	}
}

func leaderCrashAfterCommit(t *testing.T, point string) {
	nodes := newClusterFrom(t, opts{id: "n1", env: crashAt(point)}, "n2", "n3")
	n1 := nodes[0]
	requireLeader(t, n1, nodes...)

	c := startNode(t, opts{id: "c4", join: n1.url, extra: []string{"--join-timeout", "2m"}})
	requireCrash(t, n1, point)
	live := []*node{nodes[1], nodes[2], c}
	leader := waitLeader(t, live...)
	logContains(t, c, "joined: this node is in the cluster configuration")
	if c.exited() {
		t.Fatalf("c4 exited %d after joining", c.exit)
	}
	s := waitFSM(t, c, leader)
	cl := mustCluster(t, leader)
	requireServers(t, cl, "c4", "n1", "n2", "n3")
	if s.ClusterID != cl.ClusterID {
		t.Errorf("c4 cluster id %q, want %q", s.ClusterID, cl.ClusterID)
	}

	// Asking again, as a caller that lost the answer would, adds nothing.
	r := admit(t, nodes[1], c.candidate(), false)
	if leader == c {
		if r.status != http.StatusBadRequest || !namesItself(r) {
			t.Fatalf("second request, decided by c4 itself: %d %s, want 400", r.status, r.body)
		}
	} else if r.status != http.StatusOK || r.decision.AlreadyMember != "voter" || r.decision.Applied != nil {
		t.Fatalf("second request: %d %s, want 200 already a voter, nothing applied", r.status, r.body)
	}
	if again := mustCluster(t, leader); again.ConfigIndex != cl.ConfigIndex {
		t.Errorf("config index moved from %d to %d", cl.ConfigIndex, again.ConfigIndex)
	}

	back := restartClean(t, n1)
	leader = waitLeader(t, append(live, back)...)
	requireServers(t, waitVoters(t, leader, 4), "c4", "n1", "n2", "n3")
}

// 2. The candidate answers while the facts are collected and is killed
// while the leader sits between the decision and the add: the add does
// not happen and the answer is a deny on fresh facts.
func TestFaultCandidateDiesBeforeAdd(t *testing.T) {
	t.Parallel()
	n1 := bootstrapNode(t, opts{id: "n1", env: failpoints("admit/before-add=sleep(3000)")})
	c := freshNode(t, "c2")
	before := mustCluster(t, n1)

	type answer struct {
		r   admitResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := sendAdmission(n1, c.candidate(), false)
		done <- answer{r, err}
	}()
	logContains(t, n1, "failpoint admit/before-add: sleep(3000)")
	kill(t, c)

	var a answer
	select {
	case a = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
	}
	if a.err != nil || a.r.status != http.StatusForbidden {
		t.Fatalf("want 403, got %d %v %s", a.r.status, a.err, a.r.body)
	}
	d := a.r.decision
	requireDenied(t, d, "reachability", "RAFT_UNREACHABLE")
	if d.Applied != nil || d.Permanent || d.DecidedBy != "n1" {
		t.Errorf("decision applied=%+v permanent=%v decided_by=%q", d.Applied, d.Permanent, d.DecidedBy)
	}
	logContains(t, n1, "candidate stopped answering before the add")
	after := mustCluster(t, n1)
	requireServers(t, after, "n1")
	if after.ConfigIndex != before.ConfigIndex {
		t.Errorf("config index %d, want %d", after.ConfigIndex, before.ConfigIndex)
	}
}

// admitOK asks via to admit c and requires it admitted.
func admitOK(t *testing.T, via, c *node, what string) {
	t.Helper()
	r := admit(t, via, c.candidate(), false)
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
	requireAdmitted(t, r.decision)
}

// pause freezes n (SIGSTOP): its sockets accept connections but nothing
// answers, as behind a partition. Resuming is registered as a cleanup so
// the harness can stop it.
func pause(t *testing.T, n *node) (resume func()) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = n.cmd.Process.Signal(syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// 3. A voter that stops answering counts against the quorum rule
// (policies/topology.rego: the healthy voters must make a quorum of
// voters+1). Three voters, one silent: 2 < 3 of 4, refused. Five voters,
// one silent: 4 >= 4 of 6, admitted.
func TestFaultVoterPartitioned(t *testing.T) {
	t.Parallel()
	t.Run("three voters", func(t *testing.T) {
		nodes := newCluster(t, "n1", "n2", "n3")
		leader := waitLeader(t, nodes...)
		silent := others(nodes, leader)[0]
		resume := pause(t, silent)
		waitHealthy(t, leader, 2)
		c := freshNode(t, "c4")
		before := mustCluster(t, leader)

		r := admit(t, leader, c.candidate(), false)
		if r.status != http.StatusForbidden || r.decision.Permanent {
			t.Fatalf("status %d, want a non-permanent 403: %s", r.status, r.body)
		}
		requireDenied(t, r.decision, "topology", "QUORUM_UNSAFE")
		after := mustCluster(t, leader)
		sameConfig(t, "cluster", before, after)
		requireServers(t, after, "n1", "n2", "n3")

		// The same request passes once the voter answers again.
		resume()
		leader = waitLeader(t, nodes...)
		waitVoters(t, leader, 3)
		admitOK(t, leader, c, "after resuming")
		leader = waitLeader(t, append(nodes, c)...)
		requireServers(t, mustCluster(t, leader), "c4", "n1", "n2", "n3")
	})
	t.Run("five voters", func(t *testing.T) {
		nodes := newCluster(t, "n1", "n2", "n3", "n4", "n5")
		leader := waitLeader(t, nodes...)
		silent := others(nodes, leader)[0]
		resume := pause(t, silent)
		waitHealthy(t, leader, 4)
		c := freshNode(t, "c6")

		r := admit(t, leader, c.candidate(), false)
		if r.status != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", r.status, r.body)
		}
		requireAdmitted(t, r.decision)
		live := append(others(nodes, silent), c)
		leader = waitLeader(t, live...)
		waitFSM(t, c, leader)
		requireServers(t, mustCluster(t, leader), "c6", "n1", "n2", "n3", "n4", "n5")

		resume()
		leader = waitLeader(t, append(nodes, c)...)
		waitVoters(t, leader, 6)
	})
}

// outcome is where one request of a concurrent burst ended.
type outcome struct {
	cand     string
	final    admitResult
	tries    int
	unknown  bool // some answer left open whether the change was applied
	history  []string
	finished bool
}

// admitUntilFinal posts c to n until the answer is final: 200, a 403
// whose deny is permanent, or the 400 of a candidate that leads (it was
// admitted and won an election). Other answers (429, 503, 409, 502, a
// deny that may pass later, such as QUORUM_UNSAFE while new voters catch
// up) are asked again, a bounded number of times within a bounded time.
func admitUntilFinal(n *node, c candidate) outcome {
	o := outcome{cand: c.ID}
	backoff := 100 * time.Millisecond
	deadline := time.Now().Add(2 * waitTimeout)
	for o.tries < 40 && time.Now().Before(deadline) {
		o.tries++
		r, err := sendAdmission(n, c, false)
		o.final = r
		if err != nil {
			o.history = append(o.history, err.Error())
			o.unknown = true
		} else {
			o.history = append(o.history, fmt.Sprintf("%d %s", r.status, summary(r)))
			if r.status == http.StatusOK || r.status == http.StatusForbidden && r.decision.Permanent || namesItself(r) {
				o.finished = true
				return o
			}
			o.unknown = o.unknown || strings.Contains(r.body, "OUTCOME_UNKNOWN") || strings.Contains(r.body, "LEADERSHIP_LOST")
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
	return o
}

// summary is an answer in a few words: the stage and codes of a deny, or
// the error body.
func summary(r admitResult) string {
	d := r.decision
	switch {
	case d.DecisionID == "":
		return strings.TrimSpace(r.body)
	case d.Allowed:
		return "allowed"
	}
	return fmt.Sprintf("%s %v", d.stoppedAt(), d.denyCodes(d.stoppedAt()))
}

// 4. A burst of 11 concurrent requests through all three members: four
// fresh nodes, each asked for twice, and three nodes that bootstrapped
// their own clusters. Every fresh node is admitted exactly once, every
// initialized one refused, and the configuration ends as exactly the
// members plus the fresh nodes.
func TestFaultConcurrentMixedCandidates(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	var fresh, initialized []*node
	for i := 1; i <= 4; i++ {
		fresh = append(fresh, freshNode(t, fmt.Sprintf("f%d", i)))
	}
	for i := 1; i <= 3; i++ {
		initialized = append(initialized, bootstrapNode(t, opts{id: fmt.Sprintf("i%d", i)}))
	}
	type request struct {
		via  *node
		cand *node
	}
	var reqs []request
	for i, f := range fresh {
		reqs = append(reqs, request{nodes[i%3], f}, request{nodes[(i+1)%3], f})
	}
	for i, n := range initialized {
		reqs = append(reqs, request{nodes[i%3], n})
	}

	outcomes := make([]outcome, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Go(func() {
			<-start
			outcomes[i] = admitUntilFinal(rq.via, rq.cand.candidate())
		})
	}
	close(start)
	wg.Wait()

	byCand := map[string][]outcome{}
	for i, o := range outcomes {
		t.Logf("%s via %s: %d tries: %v", o.cand, reqs[i].via.id, o.tries, o.history)
		if !o.finished {
			t.Fatalf("%s: no final answer after %d tries: %v", o.cand, o.tries, o.history)
		}
		byCand[o.cand] = append(byCand[o.cand], o)
	}
	for _, n := range initialized {
		o := byCand[n.id][0]
		if o.final.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403: %v", n.id, o.final.status, o.history)
			continue
		}
		requireDenied(t, o.final.decision, "init_state", "ALREADY_INITIALIZED")
		if c := mustCluster(t, n); !slices.Equal(c.voters(), []string{n.id}) {
			t.Errorf("%s's own cluster changed: %v", n.id, c.voters())
		}
	}
	indexes := map[uint64]string{}
	for _, f := range fresh {
		checkAdmittedOnce(t, f.id, byCand[f.id], indexes)
	}

	leader := waitLeader(t, append(nodes, fresh...)...)
	want := []string{"n1", "n2", "n3"}
	for _, f := range fresh {
		want = append(want, f.id)
		waitFSM(t, f, leader)
	}
	requireServers(t, waitVoters(t, leader, len(want)), want...)
}

// checkAdmittedOnce: of the requests for one fresh node, one applied it
// (none only if an answer said the outcome was unknown) and the others
// were refused permanently as already a member, or by itself as leader.
func checkAdmittedOnce(t *testing.T, id string, outs []outcome, indexes map[uint64]string) {
	t.Helper()
	applied, unknown := 0, false
	for _, o := range outs {
		unknown = unknown || o.unknown
		d := o.final.decision
		switch {
		case o.final.status == http.StatusOK && d.Applied != nil:
			applied++
			if other, dup := indexes[d.Applied.Index]; dup && d.Applied.Index != 0 {
				t.Errorf("%s and %s applied at the same index %d", other, id, d.Applied.Index)
			}
			indexes[d.Applied.Index] = id
		case o.final.status == http.StatusOK && d.AlreadyMember != "" && d.Applied == nil:
			// Another request added it first: asking again is answered so.
		case o.final.status == http.StatusForbidden && d.Permanent &&
			(slices.Contains(d.denyCodes("init_state"), "ALREADY_INITIALIZED") || slices.Contains(d.denyCodes("topology"), "DUPLICATE_ID")),
			namesItself(o.final):
		default:
			t.Errorf("%s: final answer %d %q: %v", id, o.final.status, d.Reason, o.history)
		}
	}
	if applied > 1 || applied == 0 && !unknown {
		t.Errorf("%s applied by %d requests, want exactly 1: %v / %v", id, applied, outs[0].history, outs[1].history)
	}
}

// 5. Restart after a crash keeps membership and the cluster id (a clean
// stop is TestRestartKeepsMembership). A node whose data dir was wiped is
// a new node under an old id: the operator removes the member, which
// tombstones the id; the wiped node is refused with ID_TOMBSTONED until
// `admitd clear-tombstone`, then admitted again, once.
func TestFaultWipedDataDir(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	victim := others(nodes, leader)[0]
	rest := others(nodes, victim)
	before := mustCluster(t, leader)
	clusterID := mustState(t, victim).ClusterID

	kill(t, victim)
	again := restart(t, victim, false, "")
	waitUp(t, again)
	leader = waitLeader(t, append(rest, again)...)
	if s := waitFSM(t, again, leader); s.ClusterID != clusterID {
		t.Errorf("cluster id %q after a crash and restart, want %q", s.ClusterID, clusterID)
	}
	sameConfig(t, "cluster", before, waitVoters(t, leader, 3))

	if code := again.stop(t); code != 0 {
		t.Fatalf("%s exit %d after SIGTERM, want 0", again.id, code)
	}
	wipe(t, again.dataDir)
	// Back at its old address while still a member: the leader replicates
	// to it, but a node without state refuses raft until it is admitted,
	// so it is not silently re-synced as the old voter.
	wiped := restart(t, again, false, "")
	waitUp(t, wiped)
	for range 4 {
		time.Sleep(500 * time.Millisecond) // heartbeats and append attempts
		if s := mustState(t, wiped); s.Initialized || s.ClusterID != "" || s.LastIndex != 0 {
			t.Fatalf("a wiped node was re-synced without admission: %+v", s)
		}
	}
	waitCluster(t, leader, 2, func(c cluster) bool { return c.healthyVoters() == 2 && len(c.voters()) == 3 })
	r := admit(t, rest[0], wiped.candidate(), false)
	if r.status != http.StatusForbidden || !r.decision.Permanent {
		t.Fatalf("wiped member, not removed: %d %s, want a permanent 403", r.status, r.body)
	}
	requireDenied(t, r.decision, "topology", "DUPLICATE_ID")

	removeMember(t, leader, victim.id)
	requireServers(t, waitVoters(t, leader, 2), rest[0].id, rest[1].id)
	if s := mustState(t, wiped); s.Initialized || s.ClusterID != "" {
		t.Fatalf("wiped node state %+v, want fresh", s)
	}
	r = admit(t, rest[0], wiped.candidate(), false)
	if r.status != http.StatusForbidden || !r.decision.Permanent {
		t.Fatalf("tombstoned id: %d %s, want a permanent 403", r.status, r.body)
	}
	requireDenied(t, r.decision, "topology", "ID_TOMBSTONED")

	cr, err := runCLI("clear-tombstone", "--server", rest[0].url, "--id", victim.id)
	if err != nil || cr.code != 0 {
		t.Fatalf("admitd clear-tombstone: %v exit %d: %s", err, cr.code, cr.stderr)
	}
	r = admit(t, rest[0], wiped.candidate(), false)
	if r.status != http.StatusOK {
		t.Fatalf("after clearing the tombstone: %d %s", r.status, r.body)
	}
	requireAdmitted(t, r.decision)
	leader = waitLeader(t, append(rest, wiped)...)
	if s := waitFSM(t, wiped, leader); s.ClusterID != clusterID {
		t.Errorf("cluster id %q, want %q", s.ClusterID, clusterID)
	}
	requireServers(t, waitVoters(t, leader, 3), "n1", "n2", "n3")
}

// wipe empties a data dir, as an operator replacing a disk would.
func wipe(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// removeMember calls DELETE /v1/members/{id} and checks the answer.
func removeMember(t *testing.T, n *node, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, n.url+"/v1/members/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var rm struct {
		Allowed   bool `json:"allowed"`
		Candidate struct {
			ID string `json:"id"`
		} `json:"candidate"`
		Removed    *struct{ Index uint64 } `json:"removed"`
		Tombstoned bool                    `json:"tombstoned"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rm) != nil || rm.Candidate.ID != id || !rm.Allowed || rm.Removed == nil || !rm.Tombstoned {
		t.Fatalf("remove %s: %d %s", id, resp.StatusCode, body)
	}
}

// 1c. A follower forwards an admission; the leader adds the candidate and
// dies before it answers. The follower cannot know the outcome and says so
// (OUTCOME_UNKNOWN, not FORWARD_FAILED); `admitd join` asks again once a
// leader is back, and the answer is "already a member": exit 0, the
// candidate in the configuration exactly once.
func TestFaultForwardedAddCommittedThenSettled(t *testing.T) {
	t.Parallel()
	nodes := newClusterFrom(t, opts{id: "n1", env: crashAt("admit/after-add")}, "n2", "n3")
	n1, n2 := nodes[0], nodes[1]
	requireLeader(t, n1, nodes...)
	c := startNode(t, opts{id: "c4"})
	cand := c.candidate()
	res, err := runCLI("join", "--server", n2.url, "--id", cand.ID, "--raft-addr", cand.RaftAddr,
		"--api-url", cand.APIURL, "--timeout", "45s", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	requireCrash(t, n1, "admit/after-add")
	if res.code != 0 || !strings.Contains(res.stdout, `"already_member": "voter"`) {
		t.Fatalf("join exit %d\nstdout %s\nstderr %s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "OUTCOME_UNKNOWN") {
		t.Errorf("the follower's answer was not OUTCOME_UNKNOWN:\n%s", res.stderr)
	}
	leader := waitLeader(t, n2, nodes[2], c)
	requireServers(t, mustCluster(t, leader), "c4", "n1", "n2", "n3")
}
