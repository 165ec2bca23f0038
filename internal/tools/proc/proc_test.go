package proc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// admitdBin is the admitd binary TestMain builds once.
var admitdBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "admitd-proc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proc:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	admitdBin = filepath.Join(dir, "admitd")
	build := exec.Command("go", "build", "-o", admitdBin, "github.com/admitd/admitd/cmd/admitd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "proc: building admitd:", err)
		return 1
	}
	return m.Run()
}

// group is a Group in a test directory, stopped when the test ends.
func group(t *testing.T, grace time.Duration) *Group {
	t.Helper()
	g := &Group{Dir: t.TempDir(), Grace: grace}
	t.Cleanup(g.StopAll)
	return g
}

// within fails the test if f takes longer than max: every wait is bounded.
func within(t *testing.T, max time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > max {
		t.Fatalf("%s took %s, want at most %s", what, d.Round(time.Millisecond), max)
	}
}

func TestAdmitdNode(t *testing.T) {
	g := group(t, 0)
	p, err := g.Admitd(admitdBin, "n1", nil, "--bootstrap", "--staged=false", "--log-level", "info")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || !strings.HasPrefix(p.RaftAddr, "127.0.0.1:") {
		t.Fatalf("addresses: url %q raft %q", p.URL, p.RaftAddr)
	}
	if p.Log != filepath.Join(g.Dir, "n1.log") {
		t.Fatalf("log at %s", p.Log)
	}
	if err := p.WaitReady("/readyz", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLeader(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitHealthyVoters(1, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(g.Dir, "n1")); err != nil {
		t.Fatalf("data dir: %v", err)
	}
	within(t, DefaultGrace+5*time.Second, "Stop", p.Stop)
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("SIGTERM did not stop admitd cleanly: %v; log:\n%s", p.cmd.ProcessState, p.LogTail(2000))
	}
	if p.LogTail(1<<20) == "" {
		t.Fatal("empty log")
	}
	p.Stop() // a second Stop returns at once
}

func TestStopAll(t *testing.T) {
	g := group(t, 300*time.Millisecond)
	plain, err := g.Start("plain", "sleep", nil, "60")
	if err != nil {
		t.Fatal(err)
	}
	// exec keeps the ignored SIGTERM in the very process Stop signals,
	// so only the SIGKILL after the grace period ends it.
	deaf, err := g.Start("deaf", "sh", nil, "-c", `trap "" TERM; exec sleep 60`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	// Twice at once, as a signal handler and a deferred call may: each
	// returns only once both processes have exited.
	var wg sync.WaitGroup
	left := make(chan string, 4)
	within(t, 5*time.Second, "StopAll", func() {
		for range 2 {
			wg.Go(func() {
				g.StopAll()
				for _, p := range []*Process{plain, deaf} {
					if p.Running() {
						left <- p.Name
					}
				}
			})
		}
		wg.Wait()
	})
	close(left)
	for name := range left {
		t.Fatalf("%s running after a StopAll returned", name)
	}
	if plain.cmd.ProcessState.String() != "signal: terminated" || deaf.cmd.ProcessState.String() != "signal: killed" {
		t.Fatalf("plain %v, deaf %v", plain.cmd.ProcessState, deaf.cmd.ProcessState)
	}
}

func TestStartEnvAndLog(t *testing.T) {
	g := group(t, 0)
	p, err := g.Start("env", "sh", []string{"PROC_TEST_VALUE=seen"}, "-c", `echo "value=$PROC_TEST_VALUE"; echo to-stderr >&2`)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("sh did not exit")
	}
	if got := p.LogTail(100); got != "value=seen\nto-stderr\n" {
		t.Fatalf("log %q", got)
	}
	if got := p.LogTail(10); got != "...to-stderr\n" {
		t.Fatalf("LogTail(10) %q", got)
	}
	if _, err := g.Start("missing", filepath.Join(g.Dir, "no-such-binary"), nil); err == nil {
		t.Fatal("a missing binary started")
	}
}

// A process that exits before it is ready ends the wait at once, and the
// error carries its log.
func TestWaitFailsFastOnExit(t *testing.T) {
	g := group(t, 0)
	p, err := g.Admitd(admitdBin, "bad", nil, "--no-such-flag")
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	within(t, 20*time.Second, "WaitReady", func() { werr = p.WaitReady("/readyz", 5*time.Minute) })
	if werr == nil || !strings.Contains(werr.Error(), "exited (exit status") || !strings.Contains(werr.Error(), "no-such-flag") {
		t.Fatalf("got %v", werr)
	}
	if err := p.WaitHealthyVoters(1, 5*time.Minute); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitHealthyVoters on an exited process: %v", err)
	}
}

// A server that takes connections and never answers does not stretch a
// wait past its timeout.
func TestWaitBoundedByTimeout(t *testing.T) {
	// Never accepted: the kernel completes the handshakes into the
	// backlog, and each request waits for an answer that does not come.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := group(t, 0)
	p, err := g.Start("silent", "sleep", nil, "60")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + ln.Addr().String()
	for name, wait := range map[string]func() error{
		"WaitReady":         func() error { return p.WaitReady("/readyz", 700*time.Millisecond) },
		"WaitLeader":        func() error { return p.WaitLeader(700 * time.Millisecond) },
		"WaitHealthyVoters": func() error { return p.WaitHealthyVoters(3, 700*time.Millisecond) },
	} {
		var werr error
		within(t, 3*time.Second, name, func() { werr = wait() })
		if werr == nil || !strings.Contains(werr.Error(), "after 700ms (last: no answer)") {
			t.Fatalf("%s: got %v", name, werr)
		}
	}
	if !p.Running() {
		t.Fatal("sleep exited early")
	}
}

func TestFreeAddr(t *testing.T) {
	seen := map[string]bool{}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range 5 {
		a, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
			t.Fatalf("address %s (seen %v)", a, seen)
		}
		seen[a] = true
		// Usable: nothing holds it, so a server can listen on it. Holding
		// it also keeps the next FreeAddr from handing it out again.
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		lns = append(lns, ln)
	}
}
