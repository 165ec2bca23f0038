package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// others returns nodes without skip.
func others(nodes []*node, skip *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != skip {
			out = append(out, n)
		}
	}
	return out
}

// sameConfig fails unless two views of a cluster have the same id,
// configuration index and members (health may differ).
func sameConfig(t *testing.T, what string, before, after cluster) {
	t.Helper()
	strip := func(c cluster) []string {
		var s []string
		for _, m := range c.Servers {
			s = append(s, m.ID+"@"+m.Address+"/"+m.Suffrage)
		}
		slices.Sort(s)
		return s
	}
	if before.ClusterID != after.ClusterID || before.ConfigIndex != after.ConfigIndex ||
		!slices.Equal(strip(before), strip(after)) {
		t.Errorf("%s configuration changed:\nbefore: %s %d %v\nafter:  %s %d %v", what,
			before.ClusterID, before.ConfigIndex, strip(before), after.ClusterID, after.ConfigIndex, strip(after))
	}
}

func requireAdmitted(t *testing.T, d decision) {
	t.Helper()
	if !d.Allowed || !d.Enforced || d.Applied == nil || d.Applied.Suffrage != "voter" || d.Applied.Index == 0 {
		t.Fatalf("candidate %s not admitted: allowed=%v enforced=%v applied=%+v reason=%q",
			d.Candidate.ID, d.Allowed, d.Enforced, d.Applied, d.Reason)
	}
}

// leaderTerm is the term n leads in now, 0 if it does not lead.
func leaderTerm(n *node) uint64 {
	s, err := n.state()
	if err != nil || s.RaftState != "Leader" {
		return 0
	}
	return s.Term
}

// checkDecidedBy wants the decision from leader, which led in term before
// the request. If it no longer leads in that term an election ran in
// between, and any decider is acceptable.
func checkDecidedBy(t *testing.T, d decision, leader *node, term uint64) {
	t.Helper()
	if d.DecidedBy == leader.id {
		return
	}
	if term != 0 && leaderTerm(leader) == term {
		t.Errorf("decided_by %q, want the leader %q", d.DecidedBy, leader.id)
		return
	}
	t.Logf("leadership moved during the request; decided_by %q not checked", d.DecidedBy)
}

func requireDenied(t *testing.T, d decision, stageName, code string) {
	t.Helper()
	if d.Allowed || d.Applied != nil {
		t.Fatalf("candidate %s: allowed=%v applied=%+v, want a deny", d.Candidate.ID, d.Allowed, d.Applied)
	}
	if got := d.stoppedAt(); got != stageName {
		t.Fatalf("stopped at %q, want %q (reason %q)", got, stageName, d.Reason)
	}
	if code != "" && !slices.Contains(d.denyCodes(stageName), code) {
		t.Fatalf("%s deny codes %v, want %s (reason %q)", stageName, d.denyCodes(stageName), code, d.Reason)
	}
}

// 1. A cluster formed through --join admits a fresh node via the CLI sent
// to a follower, and the new voter replicates the FSM.
func TestJoinFormsClusterAndAdmitsFourth(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	for _, n := range nodes[1:] {
		waitFSM(t, n, leader)
	}
	n4 := freshNode(t, "n4")
	if s := mustState(t, n4); s.Initialized || s.ClusterID != "" {
		t.Fatalf("fresh node reports %+v", s)
	}
	follower := others(nodes, leader)[0]
	term := leaderTerm(leader)
	r, d := joinCLI(t, follower, n4.candidate())
	if r.code != 0 {
		t.Fatalf("admitd join exit %d, want 0; reason %q\n%s", r.code, d.Reason, r.stderr)
	}
	requireAdmitted(t, d)
	checkDecidedBy(t, d, leader, term)
	leader = waitLeader(t, append(nodes, n4)...)

	s := waitFSM(t, n4, leader)
	if s.ClusterID != mustState(t, leader).ClusterID || !s.Initialized {
		t.Errorf("n4 state %+v", s)
	}
	c := waitVoters(t, leader, 4)
	if want := []string{"n1", "n2", "n3", "n4"}; !slices.Equal(c.voters(), want) {
		t.Errorf("voters %v, want %v", c.voters(), want)
	}
	for _, m := range c.Servers {
		if m.ID == "n4" && m.Address != n4.raftAddr {
			t.Errorf("n4 listed at %s, want %s", m.Address, n4.raftAddr)
		}
	}
}

// 2. A node that bootstrapped its own cluster is refused, and neither
// cluster changes.
func TestInitializedCandidateRefused(t *testing.T) {
	t.Parallel()
	a := newCluster(t, "a1")[0]
	b := newCluster(t, "b1")[0]
	beforeA, beforeB := mustCluster(t, a), mustCluster(t, b)

	r, d := joinCLI(t, a, b.candidate())
	if r.code != 3 {
		t.Fatalf("admitd join exit %d, want 3; reason %q", r.code, d.Reason)
	}
	requireDenied(t, d, "init_state", "ALREADY_INITIALIZED")

	sameConfig(t, "cluster a", beforeA, mustCluster(t, a))
	sameConfig(t, "cluster b", beforeB, mustCluster(t, b))
	if s := mustState(t, b); s.ClusterID != beforeB.ClusterID || s.LeaderID != "b1" {
		t.Errorf("b1 state after the refusal: %+v", s)
	}
}

// 3. Candidates that do not answer are refused at reachability within the
// collection deadline.
func TestUnreachableCandidateRefusedInTime(t *testing.T) {
	t.Parallel()
	const collect = 2 * time.Second
	n1 := bootstrapNode(t, opts{id: "n1", extra: []string{"--collect-timeout", collect.String()}})
	before := mustCluster(t, n1)

	cases := []struct {
		name      string
		c         candidate
		code, not string
	}{
		{"nothing listening", candidate{ID: "ghost", RaftAddr: freeAddr(t), APIURL: "http://" + freeAddr(t)}, "RAFT_UNREACHABLE", ""},
		// The raft address accepts, so only the API call can fail.
		{"accepts but never answers", candidate{ID: "mute", RaftAddr: holdListener(t), APIURL: "http://" + holdListener(t)}, "", "RAFT_UNREACHABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := admit(t, n1, tc.c, false)
			took := time.Since(start)
			if r.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.status, r.body)
			}
			requireDenied(t, r.decision, "reachability", tc.code)
			if tc.not != "" && slices.Contains(r.decision.denyCodes("reachability"), tc.not) {
				t.Errorf("deny codes %v include %s", r.decision.denyCodes("reachability"), tc.not)
			}
			if bound := collect + 3*time.Second; took > bound {
				t.Errorf("decision took %s, want under %s", took, bound)
			}
			t.Logf("denied in %s: %s", took.Round(time.Millisecond), r.decision.Reason)
		})
	}
	sameConfig(t, "cluster", before, mustCluster(t, n1))
}

// 4. A real fresh node that reuses a member's id passes reachability and
// init_state and is refused by topology.
func TestDuplicateIDRefused(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2")
	leader := waitLeader(t, nodes...)
	impostor := freshNode(t, "n2")
	before := mustCluster(t, leader)

	r := admit(t, nodes[0], impostor.candidate(), false)
	if r.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %s", r.status, r.body)
	}
	d := r.decision
	requireDenied(t, d, "topology", "DUPLICATE_ID")
	for _, s := range d.Stages[:2] {
		if s.Outcome != "allow" {
			t.Errorf("stage %s outcome %q, want allow", s.Name, s.Outcome)
		}
	}
	sameConfig(t, "cluster", before, mustCluster(t, leader))
}

// 5. A dry run sent to a follower is decided by the leader and changes
// nothing.
func TestDryRunForwardedToLeader(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2")
	leader := waitLeader(t, nodes...)
	follower := others(nodes, leader)[0]
	c := freshNode(t, "c3")
	before := mustCluster(t, leader)

	term := leaderTerm(leader)
	r := admit(t, follower, c.candidate(), true)
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	d := r.decision
	if !d.Allowed || d.Enforced || d.Applied != nil {
		t.Errorf("dry run: allowed=%v enforced=%v applied=%+v, want true false null", d.Allowed, d.Enforced, d.Applied)
	}
	checkDecidedBy(t, d, leader, term)
	if got := r.header.Get("X-Admitd-Forwarded-To"); got != d.DecidedBy {
		t.Errorf("X-Admitd-Forwarded-To %q, want the decider %q", got, d.DecidedBy)
	}
	if d.DecidedBy == leader.id && !leaderKeeps(t, leader, d.DecisionID) {
		t.Errorf("the leader's /v1/decisions does not list %s", d.DecisionID)
	}

	cr, cd := joinCLI(t, follower, c.candidate(), "--dry-run")
	if cr.code != 0 || !cd.Allowed || cd.Enforced || cd.Applied != nil {
		t.Errorf("admitd join --dry-run: exit %d allowed=%v enforced=%v applied=%+v", cr.code, cd.Allowed, cd.Enforced, cd.Applied)
	}

	sameConfig(t, "cluster", before, mustCluster(t, leader))
	if s := mustState(t, c); s.Initialized || s.ClusterID != "" {
		t.Errorf("dry-run candidate state %+v, want uninitialized", s)
	}
}

func leaderKeeps(t *testing.T, leader *node, id string) bool {
	t.Helper()
	var body struct {
		Decisions []decision `json:"decisions"`
	}
	if err := getJSON(leader.url+"/v1/decisions?limit=10", &body); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(body.Decisions, func(d decision) bool { return d.DecisionID == id })
}

// 6. Two candidates admitted at once through different nodes both become
// voters, each exactly once, by distinct configuration changes.
func TestConcurrentAdmissions(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	cands := []*node{freshNode(t, "c4"), freshNode(t, "c5")}
	// Through two different nodes; at least one of them is a follower.
	via := others(nodes, leader)

	type result struct {
		r   cliResult
		d   decision
		err error
	}
	results := make([]result, 2)
	term := leaderTerm(leader)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Go(func() {
			<-start
			r, d, err := joinCmd(via[i], c.candidate())
			results[i] = result{r, d, err}
		})
	}
	close(start)
	wg.Wait()

	indexes := map[uint64]string{}
	for i, res := range results {
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.r.code != 0 {
			t.Fatalf("%s: admitd join exit %d; reason %q\n%s", cands[i].id, res.r.code, res.d.Reason, res.r.stderr)
		}
		requireAdmitted(t, res.d)
		checkDecidedBy(t, res.d, leader, term)
		if other, dup := indexes[res.d.Applied.Index]; dup {
			t.Errorf("%s and %s applied at the same index %d", other, cands[i].id, res.d.Applied.Index)
		}
		indexes[res.d.Applied.Index] = cands[i].id
	}

	leader = waitLeader(t, append(nodes, cands...)...)
	c := waitVoters(t, leader, 5)
	if want := []string{"c4", "c5", "n1", "n2", "n3"}; !slices.Equal(c.voters(), want) {
		t.Errorf("voters %v, want each of %v once", c.voters(), want)
	}
	for _, n := range cands {
		waitFSM(t, n, leader)
	}
}

// 7a. Three voters minus a crashed leader: a new leader is elected, and a
// fourth voter is refused because quorum of four needs three healthy.
func TestLeaderCrashThreeNodesQuorumUnsafe(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	old := waitLeader(t, nodes...)
	kill(t, old)
	survivors := others(nodes, old)
	leader := waitLeader(t, survivors...)
	waitHealthy(t, leader, 2)
	c := freshNode(t, "c4")
	before := mustCluster(t, leader)

	for _, s := range survivors {
		term := leaderTerm(leader)
		r := admit(t, s, c.candidate(), false)
		if r.status != http.StatusForbidden {
			t.Fatalf("via %s: status %d, want 403: %s", s.id, r.status, r.body)
		}
		requireDenied(t, r.decision, "topology", "QUORUM_UNSAFE")
		checkDecidedBy(t, r.decision, leader, term)
	}
	sameConfig(t, "cluster", before, mustCluster(t, leader))
}

// 7b. Four voters minus a crashed leader: a new leader is elected and a
// fifth voter (quorum 3 of 5, 3 healthy) is admitted through a survivor.
func TestLeaderCrashFourNodesAdmits(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3", "n4")
	old := waitLeader(t, nodes...)
	oldTerm := mustState(t, old).Term
	kill(t, old)
	survivors := others(nodes, old)
	leader := waitLeader(t, survivors...)
	if term := mustState(t, leader).Term; term <= oldTerm {
		t.Fatalf("new leader %s in term %d, not after the old term %d", leader.id, term, oldTerm)
	}
	waitHealthy(t, leader, 3)
	c := freshNode(t, "c5")

	via := others(survivors, leader)[0]
	term := leaderTerm(leader)
	r := admit(t, via, c.candidate(), false)
	if r.status != http.StatusOK {
		t.Fatalf("via %s: status %d, want 200: %s", via.id, r.status, r.body)
	}
	requireAdmitted(t, r.decision)
	checkDecidedBy(t, r.decision, leader, term)
	leader = waitLeader(t, append(survivors, c)...)
	waitFSM(t, c, leader)
	cl := waitHealthy(t, leader, 4)
	if got := len(cl.voters()); got != 5 {
		t.Errorf("%d voters %v, want 5", got, cl.voters())
	}
}

// 8a. A member restarted with its data dir and no flags keeps its
// membership and cluster id.
func TestRestartKeepsMembership(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	n := others(nodes, leader)[0]
	before := mustState(t, n)
	beforeC := mustCluster(t, leader)

	if code := n.stop(t); code != 0 {
		t.Fatalf("%s exit %d after SIGTERM, want 0", n.id, code)
	}
	again := restart(t, n, false, "")
	waitUp(t, again)
	logContains(t, again, "existing raft state")
	live := append(others(nodes, n), again)
	leader = waitLeader(t, live...)
	s := waitFSM(t, again, leader)
	if s.ClusterID != before.ClusterID {
		t.Errorf("cluster id %q after restart, want %q", s.ClusterID, before.ClusterID)
	}
	waitVoters(t, leader, 3)
	sameConfig(t, "cluster", beforeC, mustCluster(t, leader))
}

// 8b. `make run` twice: --bootstrap on existing state restarts the same
// cluster instead of creating a new one.
func TestBootstrapTwiceRestarts(t *testing.T) {
	t.Parallel()
	// Defaults, as `make run` uses them: policy tests run at start.
	n := bootstrapNode(t, opts{id: "solo", policyTests: true})
	before := mustState(t, n)
	if code := n.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	again := restart(t, n, true, "")
	waitUp(t, again)
	logContains(t, again, "existing raft state")
	waitLeader(t, again)
	// The replayed log restores the cluster id shortly after the election.
	eventually(t, "the same cluster led by solo", func() (bool, string) {
		s, err := again.state()
		return err == nil && s.ClusterID == before.ClusterID && s.LeaderID == "solo",
			fmt.Sprintf("%+v %v; want cluster %s", s, err, before.ClusterID)
	})
	if strings.Contains(again.log(), "bootstrapped a new cluster") {
		t.Error("the second --bootstrap bootstrapped again")
	}
	if c := mustCluster(t, again); !slices.Equal(c.voters(), []string{"solo"}) {
		t.Errorf("voters %v", c.voters())
	}
}

// 9. `serve --join` that gets a permanent refusal exits 3 promptly, well
// before --join-timeout.
func TestServeJoinRefusedExits(t *testing.T) {
	t.Parallel()
	const joinTimeout = 60 * time.Second
	const bound = 10 * time.Second
	nodes := newCluster(t, "n1", "n2", "n3")
	before := mustCluster(t, nodes[0])
	joinFlags := []string{"--join-timeout", joinTimeout.String()}

	t.Run("bootstrapped before", func(t *testing.T) {
		x := newCluster(t, "x1")[0]
		if code := x.stop(t); code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0", code)
		}
		o := x.opts
		o.bootstrap, o.join, o.extra = false, nodes[0].url, joinFlags
		requireExit3(t, startNode(t, o), bound)
	})
	t.Run("id of a crashed member", func(t *testing.T) {
		// A dead member cannot be the leader, which would answer its own id
		// with a 400 before the policies run.
		dead := others(nodes, waitLeader(t, nodes...))[0]
		kill(t, dead)
		live := others(nodes, dead)
		waitLeader(t, live...)
		dup := startNode(t, opts{id: dead.id, join: live[0].url, extra: joinFlags})
		requireExit3(t, dup, bound)
	})
	sameConfig(t, "cluster", before, mustCluster(t, nodes[0]))
}

func requireExit3(t *testing.T, n *node, bound time.Duration) {
	t.Helper()
	start := time.Now()
	code := waitExit(t, n, bound)
	if code != 3 {
		t.Fatalf("exit %d, want 3", code)
	}
	t.Logf("exited 3 after %s", time.Since(start).Round(time.Millisecond))
}

// The facts in a decision follow the contract's schema.
func TestDecisionCarriesFacts(t *testing.T) {
	t.Parallel()
	n1 := newCluster(t, "n1")[0]
	c := freshNode(t, "c2")
	r := admit(t, n1, c.candidate(), true)
	var f struct {
		Schema       string    `json:"schema"`
		Candidate    candidate `json:"candidate"`
		Reachability struct {
			Collected bool `json:"collected"`
		} `json:"reachability"`
		InitState struct {
			Collected   bool   `json:"collected"`
			NodeID      string `json:"node_id"`
			Initialized bool   `json:"initialized"`
		} `json:"init_state"`
		Topology cluster `json:"topology"`
	}
	if err := json.Unmarshal(r.decision.Facts, &f); err != nil {
		t.Fatalf("facts: %v\n%s", err, r.body)
	}
	got := fmt.Sprintf("%s %v %v %s %v %v %v", f.Schema, f.Candidate == c.candidate(), f.Reachability.Collected,
		f.InitState.NodeID, f.InitState.Initialized, f.Topology.Collected, f.Topology.voters())
	if want := "admitd.facts/v1 true true c2 false true [n1]"; got != want {
		t.Errorf("facts summary %q, want %q", got, want)
	}
}
