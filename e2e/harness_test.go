// Package e2e runs real `admitd serve` processes on 127.0.0.1 and checks
// the external contract through the HTTP API and the CLI.
//
// It imports nothing of admitd but the shipped policy files, on purpose:
// its process harness (below), its free-port helper and the wire shapes it
// decodes are its own copies, not internal/tools/proc or internal/api, so
// that a renamed JSON field, a changed flag or exit status breaks these
// tests instead of moving with the code under test.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binPath is the admitd binary built once by TestMain.
var binPath string

// Raft timeouts: raft's own LAN values. Shorter ones made leadership flap
// when two busy cores run several clusters at once. Raft requires
// LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout.
const (
	heartbeat   = "1s"
	election    = "1s"
	leaderLease = "500ms"
)

const (
	waitTimeout  = 30 * time.Second
	pollInterval = 50 * time.Millisecond
	stopTimeout  = 10 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "admitd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "admitd")
	build := exec.Command("go", "build", "-o", binPath, "github.com/admitd/admitd/cmd/admitd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building admitd:", err)
		return 1
	}
	return m.Run()
}

// freeAddr finds a free port on 127.0.0.1 below the kernel's ephemeral
// range (Linux: 32768 and up), so that no outgoing connection or port-0
// listener takes it between this check and the node's bind.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port on 127.0.0.1 in 20000-31999")
	return ""
}

// opts says how to start a node; empty addresses and data dir are filled in.
type opts struct {
	id        string
	httpAddr  string
	raftAddr  string
	dataDir   string
	bootstrap bool
	join      string
	extra     []string
	env       []string // added to the test's environment, e.g. failpoints
	// policyTests keeps the startup run of the policy tests, which costs
	// CPU at every start and can time out on a busy machine; the policies
	// have their own tests.
	policyTests bool
	// staged keeps staged joins (the default of admitd serve); most tests
	// add voters directly.
	staged bool
}

// node is one `admitd serve` process.
type node struct {
	opts
	url     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exit    int           // exit code, valid after done
}

// startNode starts `admitd serve`; t.Cleanup stops it and, if the test
// failed, prints the tail of its log.
func startNode(t *testing.T, o opts) *node {
	t.Helper()
	if o.httpAddr == "" {
		o.httpAddr = freeAddr(t)
	}
	if o.raftAddr == "" {
		o.raftAddr = freeAddr(t)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	args := []string{"serve", "--id", o.id, "--http-addr", o.httpAddr, "--raft-addr", o.raftAddr,
		"--data-dir", o.dataDir, "--raft-heartbeat-timeout", heartbeat,
		"--raft-election-timeout", election, "--raft-leader-lease-timeout", leaderLease}
	if o.bootstrap {
		args = append(args, "--bootstrap")
	}
	if o.join != "" {
		args = append(args, "--join", o.join)
	}
	if !o.policyTests {
		args = append(args, "--policy-tests=false")
	}
	if !o.staged {
		args = append(args, "--staged=false")
	}
	args = append(args, o.extra...)
	n := &node{opts: o, url: "http://" + o.httpAddr, done: make(chan struct{})}
	logf, err := os.CreateTemp(t.TempDir(), o.id+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	n.logPath = logf.Name()
	n.cmd = exec.Command(binPath, args...)
	n.cmd.Env = append(os.Environ(), o.env...)
	// A working directory without ./policies: the embedded set is used.
	n.cmd.Dir = t.TempDir()
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		_ = n.cmd.Wait()
		n.exit = n.cmd.ProcessState.ExitCode()
		logf.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		// The contract promises exit 0 on a clean shutdown.
		if !n.exited() {
			if code := n.stop(t); code != 0 {
				t.Errorf("%s exited %d after SIGTERM, want 0", o.id, code)
			}
		}
		if t.Failed() {
			t.Logf("--- tail of %s log (%s) ---\n%s", o.id, n.logPath, tail(n.logPath, 40))
		}
	})
	return n
}

// restart starts a new process with the same id, addresses and data dir.
func restart(t *testing.T, old *node, bootstrap bool, join string) *node {
	t.Helper()
	o := old.opts
	o.bootstrap, o.join = bootstrap, join
	return startNode(t, o)
}

// stop sends SIGTERM, waits a bounded time, then SIGKILL; it returns the
// exit code.
func (n *node) stop(t *testing.T) int {
	t.Helper()
	if n.exited() {
		return n.exit
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.exit
	case <-time.After(stopTimeout):
	}
	t.Errorf("%s did not stop within %s of SIGTERM; killing it", n.id, stopTimeout)
	_ = n.cmd.Process.Kill()
	<-n.done
	return n.exit
}

// kill crashes a node (SIGKILL) and waits until it is gone.
func kill(t *testing.T, n *node) {
	t.Helper()
	_ = n.cmd.Process.Kill()
	<-n.done
}

func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *node) log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// Contract shapes, declared here rather than imported from internal/api
// so that a renamed field in the implementation breaks these tests.

type candidate struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIURL   string `json:"api_url"`
}

func (n *node) candidate() candidate {
	return candidate{ID: n.id, RaftAddr: n.raftAddr, APIURL: n.url}
}

type nodeState struct {
	NodeID      string `json:"node_id"`
	RaftAddr    string `json:"raft_addr"`
	APIURL      string `json:"api_url"`
	Initialized bool   `json:"initialized"`
	ClusterID   string `json:"cluster_id"`
	LastIndex   uint64 `json:"last_index"`
	LastTerm    uint64 `json:"last_term"`
	Term        uint64 `json:"term"`
	RaftState   string `json:"raft_state"`
	LeaderID    string `json:"leader_id"`
}

type server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Healthy  bool   `json:"healthy"`
}

type cluster struct {
	Collected   bool   `json:"collected"`
	Error       string `json:"error"`
	ClusterID   string `json:"cluster_id"`
	ConfigIndex uint64 `json:"config_index"`
	Leader      struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	} `json:"leader"`
	Servers []server `json:"servers"`
	Staged  []string `json:"staged"`
	Staging []struct {
		ID          string `json:"id"`
		AdmissionID string `json:"admission_id"`
		Reason      string `json:"reason"`
	} `json:"staging"`
}

// suffrage is id's suffrage in c, "" when it is not a member.
func (c cluster) suffrage(id string) string {
	for _, s := range c.Servers {
		if s.ID == id {
			return s.Suffrage
		}
	}
	return ""
}

func (c cluster) voters() []string {
	var ids []string
	for _, s := range c.Servers {
		if s.Suffrage == "voter" {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (c cluster) healthyVoters() int {
	k := 0
	for _, s := range c.Servers {
		if s.Suffrage == "voter" && s.Healthy {
			k++
		}
	}
	return k
}

type violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type stage struct {
	Name    string      `json:"name"`
	Outcome string      `json:"outcome"`
	Deny    []violation `json:"deny"`
	Warn    []violation `json:"warn"`
}

type decision struct {
	DecisionID  string    `json:"decision_id"`
	AdmissionID string    `json:"admission_id"`
	Phase       string    `json:"phase"`
	Allowed     bool      `json:"allowed"`
	Enforced    bool      `json:"enforced"`
	Reason      string    `json:"reason"`
	Permanent   bool      `json:"permanent"`
	Candidate   candidate `json:"candidate"`
	Stages      []stage   `json:"stages"`
	DecidedBy   string    `json:"decided_by"`
	ConfigIndex uint64    `json:"config_index"`
	Applied     *applied  `json:"applied"`
	Removed     *applied  `json:"removed"`
	// AlreadyMember: asked again for a member at its own address.
	AlreadyMember string          `json:"already_member"`
	Facts         json.RawMessage `json:"facts"`
}

type applied struct {
	Suffrage string `json:"suffrage"`
	Index    uint64 `json:"index"`
}

// stoppedAt is the first stage that did not allow, "" when all did.
func (d decision) stoppedAt() string {
	for _, s := range d.Stages {
		if s.Outcome != "allow" {
			return s.Name
		}
	}
	return ""
}

// denyCodes lists the deny codes of one stage.
func (d decision) denyCodes(stageName string) []string {
	var codes []string
	for _, s := range d.Stages {
		if s.Name == stageName {
			for _, v := range s.Deny {
				codes = append(codes, v.Code)
			}
		}
	}
	return codes
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func getJSON(url string, v any) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

func (n *node) state() (nodeState, error) {
	var s nodeState
	return s, getJSON(n.url+"/v1/state", &s)
}

func (n *node) cluster() (cluster, error) {
	var c cluster
	return c, getJSON(n.url+"/v1/cluster", &c)
}

// mustCluster reads /v1/cluster, polling through transient errors such as
// a 503 while an election runs.
func mustCluster(t *testing.T, n *node) cluster {
	t.Helper()
	var c cluster
	eventually(t, n.id+" answering /v1/cluster", func() (bool, string) {
		var err error
		c, err = n.cluster()
		return err == nil, fmt.Sprint(err)
	})
	return c
}

func mustState(t *testing.T, n *node) nodeState {
	t.Helper()
	var s nodeState
	eventually(t, n.id+" answering /v1/state", func() (bool, string) {
		var err error
		s, err = n.state()
		return err == nil, fmt.Sprint(err)
	})
	return s
}

// admitResult is one POST /v1/admissions answer.
type admitResult struct {
	status   int
	header   http.Header
	decision decision
	body     string
}

// admit posts an admission to n; a transport error fails the test. Like
// joinCmd it asks again while the cluster has no leader.
func admit(t *testing.T, n *node, c candidate, dryRun bool) admitResult {
	t.Helper()
	r := postAdmission(t, n, c, dryRun)
	for deadline := time.Now().Add(waitTimeout); r.status == http.StatusServiceUnavailable &&
		strings.Contains(r.body, "NO_LEADER") && time.Now().Before(deadline); {
		time.Sleep(pollInterval)
		r = postAdmission(t, n, c, dryRun)
	}
	return r
}

func postAdmission(t *testing.T, n *node, c candidate, dryRun bool) admitResult {
	t.Helper()
	r, err := sendAdmission(n, c, dryRun)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sendAdmission posts one admission. It does not touch t, so goroutines
// may call it, and a test can expect a transport error.
func sendAdmission(n *node, c candidate, dryRun bool) (admitResult, error) {
	body, _ := json.Marshal(map[string]any{"candidate": c, "dry_run": dryRun})
	resp, err := httpClient.Post(n.url+"/v1/admissions", "application/json", bytes.NewReader(body))
	if err != nil {
		return admitResult{}, fmt.Errorf("POST %s/v1/admissions: %w", n.url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := admitResult{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if r.status == http.StatusOK || r.status == http.StatusForbidden {
		if err := json.Unmarshal(raw, &r.decision); err != nil {
			return r, fmt.Errorf("decoding the decision: %w\n%s", err, raw)
		}
	}
	return r, nil
}

// cliResult is one run of the admitd CLI.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary with a bound. It does not touch t, so goroutines
// may call it.
func runCLI(args ...string) (cliResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return cliResult{}, fmt.Errorf("admitd %v: %w", args, err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}, nil
}

// joinCmd runs `admitd join ... -o json` for c against server and decodes
// the decision it prints.
func joinCmd(server *node, c candidate, extra ...string) (cliResult, decision, error) {
	args := append([]string{"join", "--server", server.url, "--id", c.ID, "--raft-addr", c.RaftAddr,
		"--api-url", c.APIURL, "-o", "json"}, extra...)
	var d decision
	r, err := runCLI(args...)
	// An election under load can leave the cluster briefly without a
	// leader; nothing was decided then, so asking again is safe.
	for deadline := time.Now().Add(waitTimeout); err == nil && noLeader(r) && time.Now().Before(deadline); {
		time.Sleep(pollInterval)
		r, err = runCLI(args...)
	}
	if err != nil {
		return r, d, err
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		return r, d, fmt.Errorf("admitd join: exit %d, output is not a decision: %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	return r, d, nil
}

// noLeader says a CLI run failed for want of a leader, before any decision.
func noLeader(r cliResult) bool {
	return r.code == 1 && (strings.Contains(r.stderr, "NO_LEADER") || strings.Contains(r.stderr, "LEADERSHIP_LOST"))
}

func joinCLI(t *testing.T, server *node, c candidate, extra ...string) (cliResult, decision) {
	t.Helper()
	r, d, err := joinCmd(server, c, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return r, d
}

// eventually polls cond until it holds or waitTimeout passes; cond returns
// what it saw so a timeout says why.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var seen string
	for {
		var ok bool
		ok, seen = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", waitTimeout, what, seen)
		}
		time.Sleep(pollInterval)
	}
}

// waitUp waits until n answers /v1/state.
func waitUp(t *testing.T, n *node) {
	t.Helper()
	eventually(t, n.id+" serving /v1/state", func() (bool, string) {
		if n.exited() {
			t.Fatalf("%s exited with code %d", n.id, n.exit)
		}
		_, err := n.state()
		return err == nil, fmt.Sprint(err)
	})
}

// waitLeader waits until every node names the same leader, one of them,
// which says it leads, and returns it.
func waitLeader(t *testing.T, nodes ...*node) *node {
	t.Helper()
	var leader *node
	eventually(t, "one leader agreed on by all", func() (bool, string) {
		leader = nil
		named := map[string]bool{}
		var seen []string
		for _, n := range nodes {
			s, err := n.state()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", n.id, err)
			}
			seen = append(seen, fmt.Sprintf("%s:%s leader=%q", n.id, s.RaftState, s.LeaderID))
			named[s.LeaderID] = true
			if s.RaftState == "Leader" && s.LeaderID == n.id {
				leader = n
			}
		}
		return leader != nil && len(named) == 1, strings.Join(seen, " ")
	})
	return leader
}

// waitVoters waits until n's /v1/cluster lists exactly want voters, all healthy.
func waitVoters(t *testing.T, n *node, want int) cluster {
	t.Helper()
	return waitCluster(t, n, want, func(c cluster) bool { return len(c.voters()) == want && c.healthyVoters() == want })
}

// waitHealthy waits until n's /v1/cluster counts want healthy voters.
func waitHealthy(t *testing.T, n *node, want int) cluster {
	t.Helper()
	return waitCluster(t, n, want, func(c cluster) bool { return c.healthyVoters() == want })
}

// waitCluster waits until n's /v1/cluster satisfies ok.
func waitCluster(t *testing.T, n *node, want int, ok func(cluster) bool) cluster {
	t.Helper()
	var c cluster
	eventually(t, fmt.Sprintf("%d healthy voters seen from %s", want, n.id), func() (bool, string) {
		var err error
		c, err = n.cluster()
		if err != nil {
			return false, err.Error()
		}
		return ok(c), fmt.Sprintf("%+v", c.Servers)
	})
	return c
}

// waitFSM waits until n is initialized in the leader's cluster and its log
// has caught up with the leader's.
func waitFSM(t *testing.T, n, leader *node) nodeState {
	t.Helper()
	var s nodeState
	eventually(t, n.id+" replicating "+leader.id+"'s log", func() (bool, string) {
		ls, err := leader.state()
		if err != nil {
			return false, err.Error()
		}
		s, err = n.state()
		if err != nil {
			return false, err.Error()
		}
		ok := s.Initialized && s.ClusterID != "" && s.ClusterID == ls.ClusterID && s.LastIndex >= ls.LastIndex
		return ok, fmt.Sprintf("%s: %+v; leader: %+v", n.id, s, ls)
	})
	return s
}

// waitExit waits up to d for n to exit and returns its code.
func waitExit(t *testing.T, n *node, d time.Duration) int {
	t.Helper()
	select {
	case <-n.done:
		return n.exit
	case <-time.After(d):
		t.Fatalf("%s still running %s later", n.id, d)
		return -1
	}
}

// logContains waits until n's log holds s (the log is written asynchronously).
func logContains(t *testing.T, n *node, s string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s logging %q", n.id, s), func() (bool, string) {
		return strings.Contains(n.log(), s), "not yet"
	})
}

// newCluster starts a bootstrapped first node and joins the others to it
// through `serve --join`, then waits for all voters to be healthy.
func newCluster(t *testing.T, ids ...string) []*node {
	t.Helper()
	return newClusterFrom(t, opts{id: ids[0]}, ids[1:]...)
}

// newClusterFrom is newCluster with the first node's options given.
func newClusterFrom(t *testing.T, first opts, ids ...string) []*node {
	t.Helper()
	boot := bootstrapNode(t, first)
	nodes := []*node{boot}
	for _, id := range ids {
		n := startNode(t, opts{id: id, join: boot.url})
		nodes = append(nodes, n)
		// One at a time: each join waits for the previous member's health.
		waitVoters(t, boot, len(nodes))
	}
	waitLeader(t, nodes...)
	return nodes
}

// bootstrapNode starts a node with --bootstrap and waits until it is done.
func bootstrapNode(t *testing.T, o opts) *node {
	t.Helper()
	o.bootstrap = true
	n := startNode(t, o)
	waitUp(t, n)
	waitLeader(t, n)
	// Bootstrap is done once the cluster id and the node's API URL are
	// replicated; stopping earlier leaves a cluster without an id.
	logContains(t, n, "bootstrapped a new cluster")
	return n
}

// freshNode starts a node with no --bootstrap or --join and waits for it.
func freshNode(t *testing.T, id string) *node {
	t.Helper()
	n := startNode(t, opts{id: id})
	waitUp(t, n)
	return n
}

// holdListener accepts TCP connections and never writes, until the test ends.
func holdListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String()
}
