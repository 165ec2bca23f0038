package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// proc is one server process the harness started and must stop.
type proc struct {
	name     string
	url      string // http://127.0.0.1:port
	raft     string // raft address, admitd only
	cmd      *exec.Cmd
	log      string
	exited   chan struct{} // closed once the process has exited
	stopOnce sync.Once
}

// procs tracks every process started, so all of them are stopped however
// the run ends (including on SIGINT or SIGTERM, from another goroutine).
type procs struct {
	dir       string
	admitdEnv []string // added to the admitd processes' environment
	mu        sync.Mutex
	list      []*proc
}

func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// stop sends SIGTERM, then SIGKILL if the process has not exited in 5s.
// It is safe to call more than once, from any goroutine.
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (ps *procs) start(name, bin string, args ...string) (*proc, error) {
	return ps.startEnv(name, bin, nil, args...)
}

func (ps *procs) startEnv(name, bin string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(ps.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	f.Close() // the child holds its own descriptor
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// admitd starts `admitd serve` on free loopback ports with the given
// policy directory and extra flags (--bootstrap, or none for a candidate
// that waits uninitialized).
func (ps *procs) admitd(bin, name, policies string, extra ...string) (*proc, error) {
	httpAddr, raftAddr := freeAddr(), freeAddr()
	args := []string{"serve", "--id", name,
		"--http-addr", httpAddr, "--raft-addr", raftAddr,
		"--data-dir", filepath.Join(ps.dir, name),
		"--policies", policies,
		"--log-level", "error",
		// Voters directly: the cluster forms without waiting out each
		// member's stabilisation, and the numbers measure the gate itself.
		"--staged=false",
	}
	p, err := ps.startEnv(name, bin, ps.admitdEnv, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	p.url, p.raft = "http://"+httpAddr, raftAddr
	return p, nil
}

// opa starts the stock `opa run --server` on the same policy files (tests
// and capabilities.json left out, as admitd leaves them out at runtime).
func (ps *procs) opa(bin, name, policies string) (*proc, error) {
	addr := freeAddr()
	p, err := ps.start(name, bin, "run", "--server", "--addr", addr,
		"--log-level", "error", "--log-level-request", "error", "--skip-version-check",
		"--ignore", "*_test.rego", "--ignore", "capabilities.json", policies)
	if err != nil {
		return nil, err
	}
	p.url = "http://" + addr
	return p, nil
}

// waitReady polls path until it answers 200, or fails with the process log.
func (p *proc) waitReady(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if !p.running() {
			break
		}
		resp, err := c.Get(p.url + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(p.log)
	return fmt.Errorf("%s not ready at %s%s after %s; log:\n%s", p.name, p.url, path, timeout, tail(string(b), 2000))
}

// waitLeader waits until an admitd node leads its cluster, so admissions
// and evaluations are not forwarded or refused during the election.
func (p *proc) waitLeader(timeout time.Duration) error {
	return p.waitBody("/v1/state", `"raft_state":"Leader"`, timeout)
}

func (p *proc) waitBody(path, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(p.url + path)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if strings.Contains(strings.ReplaceAll(last, " ", ""), want) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s never showed %s (last: %s)", p.name, path, want, tail(last, 300))
}

// waitHealthyVoters waits until the leader's /v1/cluster shows n healthy voters.
func (p *proc) waitHealthyVoters(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(p.url + "/v1/cluster")
		if err == nil {
			var t facts.Topology
			err = json.NewDecoder(resp.Body).Decode(&t)
			resp.Body.Close()
			healthy := 0
			for _, s := range t.Servers {
				if s.Suffrage == facts.Voter && s.Healthy {
					healthy++
				}
			}
			if err == nil && t.Collected && healthy == n {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: the cluster never showed %d healthy voters", p.name, n)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// freeAddr asks the OS for a free loopback port and releases it.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runCmd runs a command to completion, streaming nothing, and returns its
// standard output; a failure carries the output's tail.
func runCmd(ctx context.Context, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, tail(string(out), 3000))
		}
		return "", err
	}
	return string(out), nil
}
