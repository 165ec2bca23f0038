// Command demo starts a local 3-node admitd cluster of real processes,
// asks it to admit a fresh node, an initialized node and an unreachable
// node, prints the outcomes as a table, and stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
)

type proc struct {
	id   string
	api  string
	raft string
	cmd  *exec.Cmd
}

func main() {
	bin := flag.String("bin", "bin/admitd", "admitd binary")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	dir, err := os.MkdirTemp("", "admitd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var procs []*proc
	defer func() { stopAll(procs) }()
	start := func(id string, args ...string) (*proc, error) {
		p, err := startNode(bin, dir, id, args...)
		if p != nil {
			procs = append(procs, p)
		}
		return p, err
	}
	n1, err := start("n1", "--bootstrap")
	if err != nil {
		return err
	}
	for _, id := range []string{"n2", "n3"} {
		if _, err := start(id, "--join", n1.api); err != nil {
			return err
		}
	}
	fmt.Println("waiting for a 3-voter cluster ...")
	if err := waitVoters(n1.api, 3); err != nil {
		return err
	}
	return admitAll(start, procs[1].api)
}

// admitAll asks a follower to admit three candidates and prints a table.
func admitAll(start func(string, ...string) (*proc, error), server string) error {
	fresh, err := start("n4")
	if err != nil {
		return err
	}
	other, err := start("x1", "--bootstrap")
	if err != nil {
		return err
	}
	gone := facts.Candidate{ID: "n6", RaftAddr: freeAddr(), APIURL: "http://" + freeAddr()}
	if err := waitUp(fresh.api); err != nil {
		return err
	}
	if err := waitUp(other.api); err != nil {
		return err
	}
	rows := []struct {
		what string
		cand facts.Candidate
	}{
		{"fresh node", cand(fresh)},
		{"initialized node (its own cluster)", cand(other)},
		{"unreachable node", gone},
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCANDIDATE\tCASE\tRESULT\tSTOPPED AT\tCODES\tDECIDED BY\tAPPLIED")
	cl := client.New(30 * time.Second)
	var staged *admission.Decision
	for _, r := range rows {
		d, err := cl.Admit(context.Background(), server, client.AdmitRequest{Candidate: r.cand})
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\terror\t\t%v\t\t\n", r.cand.ID, r.what, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.cand.ID, r.what, verdict(d), dash(d.StoppedAt), codes(d), d.DecidedBy, applied(d))
		if d.Applied != nil && d.Applied.Suffrage == facts.Nonvoter {
			staged = d
		}
	}
	if err := tw.Flush(); err != nil || staged == nil {
		return err
	}
	return awaitPromotion(cl, server, staged)
}

// awaitPromotion follows a staged candidate until the promote policies
// make it a voter (or it is removed).
func awaitPromotion(cl *client.Client, server string, d *admission.Decision) error {
	fmt.Printf("\n%s is a non-voter; the leader promotes it once it has caught up and stayed healthy ...\n", d.Candidate.ID)
	start := time.Now()
	var st *admission.Status
	err := poll(func() bool {
		var err error
		st, err = cl.Admission(context.Background(), server, d.AdmissionID)
		return err == nil && st.State != admission.StateStaged
	})
	if err != nil {
		return fmt.Errorf("waiting for the promotion of %s: %w", d.Candidate.ID, err)
	}
	fmt.Printf("%s: %s after %s (admission %s, %d decisions)\n", d.Candidate.ID, st.State,
		time.Since(start).Round(100*time.Millisecond), d.AdmissionID, len(st.Decisions))
	return nil
}

func cand(p *proc) facts.Candidate {
	return facts.Candidate{ID: p.id, RaftAddr: p.raft, APIURL: p.api}
}

func verdict(d *admission.Decision) string {
	if d.Allowed {
		return "ADMITTED"
	}
	return "REFUSED"
}

func codes(d *admission.Decision) string {
	var out []string
	for _, s := range d.Stages {
		for _, v := range s.Deny {
			out = append(out, v.Code)
		}
	}
	return dash(strings.Join(out, ","))
}

func applied(d *admission.Decision) string {
	if d.Applied == nil {
		return "-"
	}
	return fmt.Sprintf("%s at index %d", d.Applied.Suffrage, d.Applied.Index)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func startNode(bin, dir, id string, args ...string) (*proc, error) {
	p := &proc{id: id, raft: freeAddr()}
	httpAddr := freeAddr()
	p.api = "http://" + httpAddr
	log, err := os.Create(filepath.Join(dir, id+".log"))
	if err != nil {
		return nil, err
	}
	full := append([]string{"serve", "--id", id, "--http-addr", httpAddr, "--raft-addr", p.raft,
		"--data-dir", filepath.Join(dir, id), "--policies", "policies"}, args...)
	p.cmd = exec.Command(bin, full...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// freeAddr asks the OS for a free loopback port.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(api string) error {
	return poll(func() bool {
		_, err := client.New(time.Second).State(context.Background(), api)
		return err == nil
	})
}

func waitVoters(api string, n int) error {
	return poll(func() bool {
		t, err := client.New(2*time.Second).Cluster(context.Background(), api)
		if err != nil || !t.Collected {
			return false
		}
		healthy := 0
		for _, s := range t.Servers {
			if s.Suffrage == facts.Voter && s.Healthy {
				healthy++
			}
		}
		return healthy == n
	})
}

// poll checks cond every 100ms for at most 90s: staged joins take a
// stabilisation period each.
func poll(cond func() bool) error {
	for i := 0; i < 900; i++ {
		if cond() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out after 90s")
}

func stopAll(procs []*proc) {
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}
