// Package proc starts and stops the server processes of the developer
// programs (bench, demo) on 127.0.0.1: each process writes its output to a
// log file, every wait on it is bounded by a timeout and gives up as soon
// as the process has exited, and a Group stops everything it started,
// however the program ends.
package proc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

// DefaultGrace is how long Stop waits after SIGTERM before it kills.
const DefaultGrace = 5 * time.Second

// Group tracks the processes it started, so that all of them are stopped
// however the run ends, including from a signal handler's goroutine.
type Group struct {
	// Dir holds the logs (<Dir>/<name>.log) and the data directories of
	// the admitd nodes (<Dir>/<name>).
	Dir string
	// Grace is how long a process has to exit after SIGTERM before it is
	// killed; zero means DefaultGrace.
	Grace time.Duration

	mu   sync.Mutex
	list []*Process
	// stopping is held for the whole of a StopAll, so that a concurrent
	// one returns only once everything has exited: a program whose main
	// goroutine ends while a signal handler is stopping the servers must
	// not exit and leave one of them behind.
	stopping sync.Mutex
}

// Process is one server process a Group started.
type Process struct {
	Name     string
	URL      string // http://127.0.0.1:port, set by Admitd or by the caller
	RaftAddr string // raft address, admitd nodes only
	Log      string // path of the file the process writes to

	cmd      *exec.Cmd
	grace    time.Duration
	exited   chan struct{} // closed once the process has exited
	stopOnce sync.Once
}

// Start runs bin with args, its standard output and error going to
// <Dir>/<name>.log, and env added to this program's environment.
func (g *Group) Start(name, bin string, env []string, args ...string) (*Process, error) {
	logPath := filepath.Join(g.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	grace := g.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, grace: grace, exited: make(chan struct{})}
	// Started under the lock: a StopAll running meanwhile either sees this
	// process or has taken the list before it existed, never half of it.
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	g.list = append(g.list, p)
	return p, nil
}

// Admitd starts `admitd serve --id name` on two free loopback ports, with
// its data in <Dir>/<name>; args follow (--policies, --bootstrap, --join,
// --staged=false, --log-level, ...) and env is added to its environment.
func (g *Group) Admitd(bin, name string, env []string, args ...string) (*Process, error) {
	httpAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	raftAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	full := append([]string{"serve", "--id", name,
		"--http-addr", httpAddr, "--raft-addr", raftAddr,
		"--data-dir", filepath.Join(g.Dir, name)}, args...)
	p, err := g.Start(name, bin, env, full...)
	if err != nil {
		return nil, err
	}
	p.URL, p.RaftAddr = "http://"+httpAddr, raftAddr
	return p, nil
}

// StopAll stops every process started so far, the newest first (a joined
// node before the leader it joined), and returns once they have exited. It
// is safe to call more than once and from any goroutine.
func (g *Group) StopAll() {
	g.stopping.Lock()
	defer g.stopping.Unlock()
	g.mu.Lock()
	list := g.list
	g.list = nil
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop()
	}
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited within
// the grace period, and returns once it has exited. It is safe to call
// more than once, from any goroutine.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(p.grace):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Running says whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogTail is the last n bytes of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	return Tail(string(b), n)
}

// WaitReady polls path until it answers 200.
func (p *Process) WaitReady(path string, timeout time.Duration) error {
	return p.poll(timeout, 50*time.Millisecond, path, func(status int, _ []byte) bool {
		return status == http.StatusOK
	}, fmt.Sprintf("%s not ready at %s%s", p.Name, p.URL, path))
}

// WaitBody polls path until its body, spaces removed, contains want.
func (p *Process) WaitBody(path, want string, timeout time.Duration) error {
	return p.poll(timeout, 50*time.Millisecond, path, func(_ int, body []byte) bool {
		return strings.Contains(strings.ReplaceAll(string(body), " ", ""), want)
	}, fmt.Sprintf("%s: %s never showed %s", p.Name, path, want))
}

// WaitLeader waits until an admitd node leads its cluster, so admissions
// and evaluations are not forwarded or refused during the election.
func (p *Process) WaitLeader(timeout time.Duration) error {
	return p.WaitBody("/v1/state", `"raft_state":"Leader"`, timeout)
}

// WaitHealthyVoters waits until the node's /v1/cluster shows exactly n
// healthy voters (as its leader sees them).
func (p *Process) WaitHealthyVoters(n int, timeout time.Duration) error {
	return p.poll(timeout, 100*time.Millisecond, api.ClusterPath, func(status int, body []byte) bool {
		var t api.ClusterView
		if status != http.StatusOK || json.Unmarshal(body, &t) != nil || !t.Collected {
			return false
		}
		healthy := 0
		for _, s := range t.Servers {
			if s.Suffrage == facts.Voter && s.Healthy {
				healthy++
			}
		}
		return healthy == n
	}, fmt.Sprintf("%s: the cluster never showed %d healthy voters", p.Name, n))
}

// poll GETs path every interval until done accepts the answer. No request
// outlives the deadline, and a process that has exited ends the wait at
// once: its log says why, a longer wait would not.
func (p *Process) poll(timeout, interval time.Duration, path string, done func(status int, body []byte) bool, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := "no answer"
	for {
		if !p.Running() {
			return fmt.Errorf("%s: %s exited (%v); log:\n%s", what, p.Name, p.cmd.ProcessState, p.LogTail(2000))
		}
		status, body, err := get(ctx, p.URL+path)
		if err == nil {
			if done(status, body) {
				return nil
			}
			last = fmt.Sprintf("%d %s", status, Tail(string(body), 300))
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s after %s (last: %s); log:\n%s", what, timeout, last, p.LogTail(2000))
		case <-p.exited:
		case <-time.After(interval):
		}
	}
}

// get is one GET bounded by ctx and by two seconds of its own, so a server
// that hangs on one request does not use up the whole wait.
func get(ctx context.Context, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// FreeAddr finds a free loopback port and releases it, for a server to
// listen on. It picks below the kernel's ephemeral range (Linux: 32768 and
// up), where the OS's own picks for port 0 and for outgoing connections
// live: one of those could take the port between this check and the
// server's bind, as seen under load.
func FreeAddr() (string, error) {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Tail is the last n bytes of s, marked with "..." when cut: logs and
// bodies quoted in errors stay short.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
