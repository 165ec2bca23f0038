package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// binary is the kvstore program, built once for every test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kvstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "kvstore")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Bounds of the waits.
const (
	pollEvery   = 100 * time.Millisecond
	leaderWait  = 30 * time.Second
	promoteWait = 45 * time.Second // a staged node must stay healthy 10s before its promotion
	keysWait    = 30 * time.Second
	stopTimeout = 15 * time.Second
)

var client = &http.Client{Timeout: 40 * time.Second} // longer than the gate's 30s admission deadline

// proc is one kvstore process with its own addresses and data directory.
type proc struct {
	t                  *testing.T
	id                 string
	raftAddr, httpAddr string
	dataDir, logPath   string
	extra              []string // -bootstrap, -join URL, ...
	cmd                *exec.Cmd
	done               chan struct{} // closed when cmd has exited
}

// newProc prepares a node; start runs it. Cleanup stops it whatever happens.
func newProc(t *testing.T, id string, extra ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, id: id, raftAddr: freeAddr(t), httpAddr: freeAddr(t),
		dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "log"), extra: extra}
	t.Cleanup(func() {
		if t.Failed() {
			p.dumpLog()
		}
	})
	t.Cleanup(p.stop)
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (p *proc) url() string { return "http://" + p.httpAddr }

// start runs the program; a restart reuses the data directory and addresses.
func (p *proc) start() *proc {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	args := append([]string{"-id", p.id, "-raft-addr", p.raftAddr, "-http-addr", p.httpAddr, "-data-dir", p.dataDir}, p.extra...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(done)
	}()
	return p
}

func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and expects a clean exit 0; it kills the process if
// it does not exit in time.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Errorf("%s exited %d after SIGTERM, want 0", p.id, code)
		}
	case <-time.After(stopTimeout):
		p.t.Errorf("%s did not exit within %s of SIGTERM; killing it", p.id, stopTimeout)
		p.kill()
	}
}

// kill is a crash: SIGKILL, then wait for the process to be gone.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Errorf("%s still running %s after SIGKILL", p.id, stopTimeout)
	}
}

func (p *proc) dumpLog() {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	p.t.Logf("--- %s log (tail) ---\n%s", p.id, b)
}

// waitFor polls cond every pollEvery until it holds, at most timeout.
// cond returns whether it holds and what it saw, for the failure message.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var seen string
	deadline := time.Now().Add(timeout)
	for i := 0; i < int(timeout/pollEvery)+1; i++ {
		var ok bool
		if ok, seen = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, seen)
}

// --- the API, as a client ---------------------------------------------

func (p *proc) status() (status, error) {
	var st status
	resp, err := client.Get(p.url() + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (st status) String() string {
	b, _ := json.Marshal(st)
	return string(b)
}

func (st status) server(id string) (server, bool) {
	i := slices.IndexFunc(st.Servers, func(s server) bool { return s.ID == id })
	if i < 0 {
		return server{}, false
	}
	return st.Servers[i], true
}

func (p *proc) mustStatus(t *testing.T) status {
	t.Helper()
	st, err := p.status()
	if err != nil {
		t.Fatalf("%s /status: %v", p.id, err)
	}
	return st
}

func (p *proc) put(key, value string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPut, p.url()+"/key/"+key, strings.NewReader(value))
	if err != nil {
		return 0, "", err
	}
	return do(req)
}

func (p *proc) get(key string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, p.url()+"/key/"+key, nil)
	if err != nil {
		return 0, "", err
	}
	return do(req)
}

func do(req *http.Request) (int, string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// testDecision is the part of a decision the tests read.
type testDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	Applied *struct {
		Suffrage string `json:"suffrage"`
	} `json:"applied"`
}

// join posts a join request for id at raftAddr to p, as a joining node would.
func (p *proc) join(t *testing.T, id, raftAddr string) (int, testDecision, string) {
	t.Helper()
	body, _ := json.Marshal(joinRequest{ID: id, RaftAddr: raftAddr})
	req, _ := http.NewRequest(http.MethodPost, p.url()+"/join", bytes.NewReader(body))
	code, answer, err := do(req)
	if err != nil {
		t.Fatalf("POST %s/join: %v", p.url(), err)
	}
	var d testDecision
	json.Unmarshal([]byte(answer), &d)
	return code, d, answer
}

// --- cluster helpers ----------------------------------------------------

// waitLeading waits until p leads its cluster.
func (p *proc) waitLeading(t *testing.T) {
	t.Helper()
	waitFor(t, p.id+" to lead", leaderWait, func() (bool, string) {
		st, err := p.status()
		if err != nil {
			return false, err.Error()
		}
		return st.State == "Leader" && st.LeaderID == p.id, st.String()
	})
}

// waitVoter waits until leader's configuration holds id as a voter at addr.
func waitVoter(t *testing.T, leader *proc, id, addr string) {
	t.Helper()
	waitFor(t, id+" to be a voter", promoteWait, func() (bool, string) {
		st, err := leader.status()
		if err != nil {
			return false, err.Error()
		}
		s, ok := st.server(id)
		return ok && s.Suffrage == "voter" && s.Address == addr, st.String()
	})
}

// waitKeys waits until p serves every key of want with its value.
func waitKeys(t *testing.T, p *proc, want map[string]string) {
	t.Helper()
	waitFor(t, p.id+" to serve the keys", keysWait, func() (bool, string) {
		for k, v := range want {
			code, got, err := p.get(k)
			if err != nil || code != http.StatusOK || got != v {
				return false, fmt.Sprintf("GET %s: %d %q %v", k, code, got, err)
			}
		}
		return true, ""
	})
}

// putAll writes every key through p, which must lead; a write that meets
// an election in progress is retried, bounded.
func putAll(t *testing.T, p *proc, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		waitFor(t, "PUT "+k+" on "+p.id, leaderWait, func() (bool, string) {
			code, body, err := p.put(k, v)
			return err == nil && code == http.StatusNoContent, fmt.Sprintf("%d %s %v", code, body, err)
		})
	}
}

// bootstrapped starts a node that bootstraps its own cluster and leads it.
func bootstrapped(t *testing.T, id string) *proc {
	t.Helper()
	p := newProc(t, id, "-bootstrap").start()
	p.waitLeading(t)
	return p
}

// joined starts a node that joins through via and waits until it is a voter.
func joined(t *testing.T, id string, via *proc) *proc {
	t.Helper()
	p := newProc(t, id, "-join", via.url()).start()
	waitVoter(t, via, id, p.raftAddr)
	return p
}

func servers(st status) []server {
	return slices.SortedFunc(slices.Values(st.Servers), func(a, b server) int { return strings.Compare(a.ID, b.ID) })
}

func sameServers(t *testing.T, p *proc, before status) {
	t.Helper()
	if after := p.mustStatus(t); !slices.Equal(servers(before), servers(after)) {
		t.Errorf("%s's configuration changed: before %v, after %v", p.id, before.Servers, after.Servers)
	}
}

// --- the cases ----------------------------------------------------------

// A fresh node started with -join is admitted, staged, promoted to voter,
// and serves what was written before it joined.
func TestJoinReplicates(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	before := map[string]string{"a": "1", "b": "2", "c": "3"}
	putAll(t, n1, before)

	n2 := joined(t, "n2", n1)
	waitKeys(t, n2, before)
	n3 := joined(t, "n3", n1)
	waitKeys(t, n3, before)

	st := n1.mustStatus(t)
	for _, p := range []*proc{n1, n2, n3} {
		if s, ok := st.server(p.id); !ok || s.Suffrage != "voter" || s.Address != p.raftAddr {
			t.Errorf("%s in n1's configuration: %+v, %v; want a voter at %s", p.id, s, ok, p.raftAddr)
		}
	}
	if len(st.Servers) != 3 {
		t.Errorf("want 3 servers, got %v", st.Servers)
	}
}

// A node that bootstrapped a cluster of its own holds another history: it
// is refused by the init_state stage, and neither cluster changes.
func TestRefusesNodeOfAnotherCluster(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	m1 := bootstrapped(t, "m1")
	putAll(t, m1, map[string]string{"other": "history"})
	n1Before, m1Before := n1.mustStatus(t), m1.mustStatus(t)

	code, d, answer := n1.join(t, "m1", m1.raftAddr)
	if code != http.StatusForbidden || d.Allowed {
		t.Fatalf("join of m1: %d, want 403; reason: %s; answer: %.2000s", code, d.Reason, answer)
	}
	if !strings.Contains(d.Reason, "init_state") {
		t.Errorf("refused, but not by init_state: %s", d.Reason)
	}
	t.Logf("refused: %s", d.Reason)
	sameServers(t, n1, n1Before)
	sameServers(t, m1, m1Before)
}

// Nothing listens at the candidate's raft address: the gate answers a deny
// within its deadline instead of hanging, and changes nothing.
func TestRefusesUnreachable(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	before := n1.mustStatus(t)
	start := time.Now()
	code, d, answer := n1.join(t, "ghost", freeAddr(t))
	took := time.Since(start)
	if code != http.StatusForbidden || d.Allowed {
		t.Fatalf("join of ghost: %d after %s, want 403; reason: %s; answer: %.2000s", code, took, d.Reason, answer)
	}
	if took > 30*time.Second {
		t.Errorf("the deny took %s, past the gate's 30s admission deadline", took)
	}
	if !strings.Contains(d.Reason, "RAFT_UNREACHABLE") {
		t.Errorf("refused, but not as unreachable: %s", d.Reason)
	}
	t.Logf("refused in %s: %s", took.Round(time.Millisecond), d.Reason)
	sameServers(t, n1, before)
}

// A second node calling itself n2, at another address, cannot take n2's
// place: the join is refused and n2 keeps its address.
func TestRefusesDuplicateID(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	n2 := joined(t, "n2", n1)
	impostor := newProc(t, "n2").start() // fresh, waiting to be admitted
	waitFor(t, "the second n2 to serve", leaderWait, func() (bool, string) {
		_, err := impostor.status()
		return err == nil, fmt.Sprint(err)
	})
	before := n1.mustStatus(t)

	code, d, answer := n1.join(t, "n2", impostor.raftAddr)
	if code != http.StatusForbidden || d.Allowed {
		t.Fatalf("join of n2 at %s: %d, want 403; reason: %s; answer: %.2000s", impostor.raftAddr, code, d.Reason, answer)
	}
	if !strings.Contains(d.Reason, "DUPLICATE_ID") {
		t.Errorf("refused, but not as a duplicate id: %s", d.Reason)
	}
	t.Logf("refused: %s", d.Reason)
	sameServers(t, n1, before)
	if s, _ := n1.mustStatus(t).server("n2"); s.Address != n2.raftAddr {
		t.Errorf("n2 is at %q, want %s", s.Address, n2.raftAddr)
	}

	// The same impostor started with -join gives up at once: the deny is
	// permanent, so it does not wait out its 2m -join-timeout.
	joiner := newProc(t, "n2", "-join", n1.url()).start()
	select {
	case <-joiner.done:
		if code := joiner.cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("the joining impostor exited %d, want 1", code)
		}
	case <-time.After(leaderWait):
		t.Errorf("the joining impostor still runs %s after a permanent deny", leaderWait)
	}
	sameServers(t, n1, before)
}

// DELETE /member/{id} removes a member through the gate, which tombstones
// the id: the same id is refused afterwards.
func TestRemoveMember(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	n2 := newProc(t, "n2", "-join", n1.url()).start()
	waitFor(t, "n2 in the configuration", leaderWait, func() (bool, string) {
		st, err := n1.status()
		_, ok := st.server("n2")
		return err == nil && ok, fmt.Sprint(st, err)
	})

	req, _ := http.NewRequest(http.MethodDelete, n1.url()+"/member/n2", nil)
	code, answer, err := do(req)
	if err != nil || code != http.StatusOK {
		t.Fatalf("DELETE /member/n2: %d %v: %s", code, err, answer)
	}
	if _, ok := n1.mustStatus(t).server("n2"); ok {
		t.Errorf("n2 still in the configuration after its removal: %v", n1.mustStatus(t))
	}
	// The removed n2 has raft state (init_state would refuse it): a fresh
	// n2 shows the tombstone.
	n2.stop()
	fresh := newProc(t, "n2").start()
	waitFor(t, "the fresh n2 to serve", leaderWait, func() (bool, string) {
		_, err := fresh.status()
		return err == nil, fmt.Sprint(err)
	})
	code, d, _ := n1.join(t, "n2", fresh.raftAddr)
	if code != http.StatusForbidden || !strings.Contains(d.Reason, "ID_TOMBSTONED") {
		t.Errorf("join of a fresh n2 after the removal: %d, want 403 ID_TOMBSTONED; reason: %s", code, d.Reason)
	}
}

// Keys written before and after a leader crash survive it, and the crashed
// node, restarted on its data directory, serves them all.
func TestLeaderKillAndRestart(t *testing.T) {
	t.Parallel()
	n1 := bootstrapped(t, "n1")
	n2 := joined(t, "n2", n1)
	n3 := joined(t, "n3", n1)
	before := map[string]string{"k1": "v1", "k2": "v2", "k3": "v3"}
	putAll(t, n1, before)
	waitKeys(t, n2, before)
	waitKeys(t, n3, before)

	n1.kill()
	var leader *proc
	waitFor(t, "a new leader among n2 and n3", leaderWait, func() (bool, string) {
		var seen []string
		for _, p := range []*proc{n2, n3} {
			st, err := p.status()
			if err == nil && st.State == "Leader" && st.LeaderID == p.id {
				leader = p
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s: %v %v", p.id, st, err))
		}
		return false, strings.Join(seen, "; ")
	})
	after := map[string]string{"k4": "v4", "k5": "v5"}
	putAll(t, leader, after)

	n1.start() // same data directory, same addresses
	all := map[string]string{}
	for k, v := range before {
		all[k] = v
	}
	for k, v := range after {
		all[k] = v
	}
	waitKeys(t, n1, all)
	st := n1.mustStatus(t)
	if len(st.Servers) != 3 {
		t.Errorf("restarted n1 sees %v, want 3 servers", st.Servers)
	}
}

// A node whose join is never answered gives up after -join-timeout and
// exits 1.
func TestJoinGivesUp(t *testing.T) {
	t.Parallel()
	p := newProc(t, "lonely", "-join", "http://"+freeAddr(t), "-join-timeout", "2s").start()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after a 2s join timeout")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
}
