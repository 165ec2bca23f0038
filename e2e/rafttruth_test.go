package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The leader learns a candidate's init state from its raft server too, so
// a candidate may be a bare hashicorp/raft server with no API at all. These
// tests run such servers in-process next to real admitd clusters.

// bareRaft is an in-process hashicorp/raft server with in-memory stores, a
// trivial FSM and no HTTP API.
type bareRaft struct {
	id      string
	addr    string
	r       *raft.Raft
	logPath string
}

// nopFSM applies nothing and snapshots nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error {
	_, err := io.Copy(io.Discard, rc)
	rc.Close()
	return err
}

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

// startBareRaft starts a fresh raft server with id on 127.0.0.1; t.Cleanup
// shuts it down and, if the test failed, prints the tail of its log.
func startBareRaft(t *testing.T, id string) *bareRaft {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), id+"-raft-*.log")
	if err != nil {
		t.Fatal(err)
	}
	b := &bareRaft{id: id, logPath: logf.Name()}
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(id)
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.CommitTimeout = 10 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Output: logf, Level: hclog.Debug})
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 5*time.Second, logf)
	if err != nil {
		logf.Close()
		t.Fatal(err)
	}
	b.addr = string(trans.LocalAddr())
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(cfg, nopFSM{}, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		trans.Close()
		logf.Close()
		t.Fatal(err)
	}
	b.r = r
	t.Cleanup(func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("shutting down raft server %s: %v", id, err)
		}
		trans.Close()
		logf.Close()
		if t.Failed() {
			t.Logf("--- tail of bare raft %s log (%s) ---\n%s", id, b.logPath, tail(b.logPath, 40))
		}
	})
	return b
}

// candidate names the bare server with no API.
func (b *bareRaft) candidate() candidate {
	return candidate{ID: b.id, RaftAddr: b.addr, APIURL: ""}
}

// term is the server's current term.
func (b *bareRaft) term(t *testing.T) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(b.r.Stats()["term"], 10, 64)
	if err != nil {
		t.Fatalf("raft %s term: %v", b.id, err)
	}
	return v
}

func (b *bareRaft) String() string {
	return fmt.Sprintf("%s@%s %s term=%s last_index=%d leader=%q", b.id, b.addr, b.r.State(),
		b.r.Stats()["term"], b.r.LastIndex(), b.leader())
}

// leader is the raft address of the leader b follows, "" if none.
func (b *bareRaft) leader() string {
	addr, _ := b.r.LeaderWithID()
	return string(addr)
}

// bootstrapAlone makes b the only voter of its own cluster and waits until
// it leads and has committed its term's first entry, so its term and last
// index stay put.
func (b *bareRaft) bootstrapAlone(t *testing.T) {
	t.Helper()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(b.id), Address: raft.ServerAddress(b.addr)}}}
	if err := b.r.BootstrapCluster(conf).Error(); err != nil {
		t.Fatalf("bootstrapping %s: %v", b.id, err)
	}
	eventually(t, b.id+" leading its own cluster", func() (bool, string) {
		return b.r.State() == raft.Leader, b.String()
	})
	if err := b.r.Barrier(waitTimeout).Error(); err != nil {
		t.Fatalf("barrier on %s: %v (%s)", b.id, err, b)
	}
}

// explain is a decision in words for failure messages: status, stop,
// reason and every stage's denies.
func explain(r admitResult) string {
	d := r.decision
	if d.DecisionID == "" {
		return fmt.Sprintf("HTTP %d %s", r.status, strings.TrimSpace(r.body))
	}
	var stages []string
	for _, s := range d.Stages {
		line := s.Name + "=" + s.Outcome
		for _, v := range s.Deny {
			line += fmt.Sprintf(" [%s: %s]", v.Code, v.Message)
		}
		stages = append(stages, line)
	}
	return fmt.Sprintf("HTTP %d allowed=%v permanent=%v applied=%+v reason=%q stages: %s",
		r.status, d.Allowed, d.Permanent, d.Applied, d.Reason, strings.Join(stages, "; "))
}

// requireRefused wants a 403 stopped at stageName with code among its
// denies, and permanent when asked.
func requireRefused(t *testing.T, r admitResult, stageName, code string, permanent bool) {
	t.Helper()
	d := r.decision
	switch {
	case r.status != http.StatusForbidden:
		t.Fatalf("status %d, want 403: %s", r.status, explain(r))
	case d.Allowed || d.Applied != nil:
		t.Fatalf("not a refusal: %s", explain(r))
	case d.stoppedAt() != stageName:
		t.Fatalf("stopped at %q, want %q: %s", d.stoppedAt(), stageName, explain(r))
	case !slices.Contains(d.denyCodes(stageName), code):
		t.Fatalf("%s denies %v, want %s among them: %s", stageName, d.denyCodes(stageName), code, explain(r))
	case permanent && !d.Permanent:
		t.Fatalf("refusal not permanent: %s", explain(r))
	}
}

// 1. A fresh bare raft server, with no API, is admitted on its raft
// server's answer alone, becomes a voter and receives the log.
func TestRaftTruthBareNodeAdmitted(t *testing.T) {
	t.Parallel()
	bare := startBareRaft(t, "bare1")
	n1 := newCluster(t, "n1")[0]

	r := admit(t, n1, bare.candidate(), false)
	if r.status != http.StatusOK || !r.decision.Allowed || r.decision.Applied == nil || r.decision.Applied.Suffrage != "voter" {
		t.Fatalf("bare raft server not admitted as a voter: %s", explain(r))
	}
	requireAdmitted(t, r.decision)
	var f struct {
		InitState struct {
			Sources     []string `json:"sources"`
			NodeID      string   `json:"node_id"`
			Initialized bool     `json:"initialized"`
		} `json:"init_state"`
	}
	if err := json.Unmarshal(r.decision.Facts, &f); err != nil {
		t.Fatalf("facts: %v\n%s", err, r.body)
	}
	if !slices.Equal(f.InitState.Sources, []string{"raft"}) || f.InitState.NodeID != bare.id || f.InitState.Initialized {
		t.Errorf("init_state facts %+v, want sources [raft], node_id %s, not initialized", f.InitState, bare.id)
	}

	c := mustCluster(t, n1)
	if c.suffrage(bare.id) != "voter" {
		t.Fatalf("%s is %q in the configuration, want voter: %+v", bare.id, c.suffrage(bare.id), c.Servers)
	}
	for _, m := range c.Servers {
		if m.ID == bare.id && m.Address != bare.addr {
			t.Errorf("%s listed at %s, want %s", bare.id, m.Address, bare.addr)
		}
	}

	// It receives the log: its last index reaches the leader's, and it
	// follows n1.
	eventually(t, bare.id+" catching up with n1's log", func() (bool, string) {
		s, err := n1.state()
		if err != nil {
			return false, err.Error()
		}
		return s.RaftState == "Leader" && s.LastIndex > 0 && bare.r.LastIndex() >= s.LastIndex && bare.leader() == n1.raftAddr,
			fmt.Sprintf("%s; n1 %+v", bare, s)
	})
	// The cluster keeps a leader with both voters healthy.
	waitVoters(t, n1, 2)
	if l := waitLeader(t, n1); l != n1 {
		t.Fatalf("leader %s, want n1", l.id)
	}
	if bare.r.State() != raft.Follower {
		t.Errorf("%s is %s, want a follower", bare.id, bare.r.State())
	}
}

// 2. A bare raft server that bootstrapped its own cluster is refused, and
// the probe changes neither cluster: the bare server keeps its term, its
// log and its lead.
func TestRaftTruthBootstrappedBareNodeRefused(t *testing.T) {
	t.Parallel()
	bare := startBareRaft(t, "bare2")
	bare.bootstrapAlone(t)
	n1 := newCluster(t, "n1")[0]
	before := mustCluster(t, n1)
	term, last := bare.term(t), bare.r.LastIndex()
	if term < 1 || last < 1 {
		t.Fatalf("bootstrapped %s: want term and last index >= 1", bare)
	}

	r := admit(t, n1, bare.candidate(), false)
	requireRefused(t, r, "init_state", "ALREADY_INITIALIZED", true)
	if got := r.decision.denyCodes("init_state"); slices.Contains(got, "INIT_STATE_CONTRADICTION") {
		t.Errorf("init_state denies %v: no API, so nothing to contradict: %s", got, explain(r))
	}

	sameConfig(t, "n1's cluster", before, mustCluster(t, n1))
	if bare.term(t) != term || bare.r.LastIndex() != last || bare.r.State() != raft.Leader ||
		bare.leader() != bare.addr {
		t.Errorf("the probe changed %s: now %s, was term %d last index %d, leading itself", bare.id, bare, term, last)
	}
	if c := bare.r.GetConfiguration(); c.Error() != nil || len(c.Configuration().Servers) != 1 {
		t.Errorf("%s's own configuration: %+v %v", bare.id, c.Configuration().Servers, c.Error())
	}
}

// fakeFreshAPI serves a fresh node's /v1/state for id and accepts
// POST /v1/admitted, whatever the raft server behind raftAddr holds.
func fakeFreshAPI(t *testing.T, id, raftAddr string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"node_id": id, "raft_addr": raftAddr, "api_url": srv.URL,
			"initialized": false, "cluster_id": "", "last_index": 0, "last_term": 0, "term": 0,
			"last_contact_ms": -1, "raft_state": "Follower", "leader_id": "", "version": "x",
		})
	})
	mux.HandleFunc("POST /v1/admitted", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"fenced": false, "initialized": false}`)
	})
	return srv
}

// 3. An API that says fresh in front of a raft server with state is a
// contradiction, refused for good.
func TestRaftTruthFreshAPIOverBootstrappedRaftRefused(t *testing.T) {
	t.Parallel()
	bare := startBareRaft(t, "bare3")
	bare.bootstrapAlone(t)
	api := fakeFreshAPI(t, bare.id, bare.addr)
	n1 := newCluster(t, "n1")[0]
	before := mustCluster(t, n1)
	term := bare.term(t)
	if term < 1 {
		t.Fatalf("bootstrapped %s: want term >= 1", bare)
	}

	cand := candidate{ID: bare.id, RaftAddr: bare.addr, APIURL: api.URL}
	r := admit(t, n1, cand, false)
	requireRefused(t, r, "init_state", "INIT_STATE_CONTRADICTION", true)

	sameConfig(t, "n1's cluster", before, mustCluster(t, n1))
	if bare.term(t) != term || bare.r.State() != raft.Leader {
		t.Errorf("the probe changed %s: now %s, was term %d", bare.id, bare, term)
	}
}

// 4. A raft address held by another member is refused at reachability,
// which names who answered there, before topology looks at addresses.
func TestRaftTruthAddressOfAnotherMemberRefused(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2")
	leader := waitLeader(t, nodes...)
	before := mustCluster(t, leader)
	follower := others(nodes, leader)[0]
	r := admit(t, leader, candidate{ID: "evil", RaftAddr: follower.raftAddr, APIURL: ""}, false)
	requireRefused(t, r, "reachability", "RAFT_ID_MISMATCH", true)
	var msg string
	for _, st := range r.decision.Stages {
		for _, v := range st.Deny {
			if v.Code == "RAFT_ID_MISMATCH" {
				msg = v.Message
			}
		}
	}
	if !strings.Contains(msg, `"`+follower.id+`"`) {
		t.Errorf("RAFT_ID_MISMATCH at %s's address does not name %s: %q", follower.id, follower.id, msg)
	}
	sameConfig(t, "after evil@"+follower.id, before, mustCluster(t, leader))

	// The leader's own address never reaches the policies: the request
	// names the node that decides.
	r = admit(t, leader, candidate{ID: "evil", RaftAddr: leader.raftAddr, APIURL: ""}, false)
	if !namesItself(r) {
		t.Errorf("evil at the leader's own raft address: %s, want 400 naming the leader", explain(r))
	}
	sameConfig(t, "after evil@"+leader.id, before, mustCluster(t, leader))
	for _, n := range nodes {
		if s := mustState(t, n); s.LeaderID != leader.id {
			t.Errorf("%s follows %q after the probes, want %s", n.id, s.LeaderID, leader.id)
		}
	}
}

// 5. A staged join of a bare raft server: a non-voter first, then promoted
// by the leader on catch-up facts from its raft server.
func TestRaftTruthBareNodeStagedAndPromoted(t *testing.T) {
	policies := stagedPolicies(t, 2000)
	bare := startBareRaft(t, "bare5")
	n1 := bootstrapNode(t, stagedOpts("n1", policies, time.Minute))

	r := admit(t, n1, bare.candidate(), false)
	d := r.decision
	if r.status != http.StatusOK || !d.Allowed || d.Applied == nil || d.Applied.Suffrage != "nonvoter" || d.AdmissionID == "" {
		t.Fatalf("bare raft server not staged as a non-voter: %s", explain(r))
	}

	var st admissionStatus
	eventually(t, bare.id+" promoted", func() (bool, string) {
		st = getAdmission(t, n1, d.AdmissionID)
		c, err := n1.cluster()
		if err != nil {
			return false, err.Error()
		}
		done := st.State == "promoted" || st.State == "admitted"
		var last string
		if len(st.Decisions) > 0 {
			x := st.Decisions[0]
			last = fmt.Sprintf("%s allowed=%v reason=%q", x.Phase, x.Allowed, x.Reason)
		}
		// The status says promoted as soon as the configuration does; the
		// promotion's decision is recorded a moment later.
		recorded := slices.ContainsFunc(st.Decisions, func(x decision) bool { return x.Phase == "promote" && x.Applied != nil })
		return done && recorded && c.suffrage(bare.id) == "voter",
			fmt.Sprintf("state %s, %s %q, newest decision %s; %s", st.State, bare.id, c.suffrage(bare.id), last, bare)
	})

	var promote *decision
	for i := range st.Decisions {
		if x := &st.Decisions[i]; x.Phase == "promote" && x.Allowed {
			promote = x
		}
	}
	if promote == nil || promote.Applied == nil || promote.Applied.Suffrage != "voter" {
		t.Fatalf("no applied promotion among %d decisions: %+v", len(st.Decisions), st.Decisions)
	}
	var f struct {
		CatchUp struct {
			Sources   []string `json:"sources"`
			LastIndex uint64   `json:"last_index"`
		} `json:"catch_up"`
	}
	if len(promote.Facts) > 0 {
		if err := json.Unmarshal(promote.Facts, &f); err != nil {
			t.Fatalf("promotion facts: %v", err)
		}
		if !slices.Equal(f.CatchUp.Sources, []string{"raft"}) || f.CatchUp.LastIndex == 0 {
			t.Errorf("promotion catch_up %+v, want sources [raft] and the candidate's last index", f.CatchUp)
		}
	} else {
		t.Logf("the admission status carries no facts for the promotion; catch_up sources not checked")
	}
	c := waitVoters(t, n1, 2)
	if len(c.Staged) != 0 {
		t.Errorf("staged after the promotion: %v", c.Staged)
	}
	eventually(t, bare.id+" following n1", func() (bool, string) {
		return bare.leader() == n1.raftAddr && bare.r.State() == raft.Follower, bare.String()
	})
}
