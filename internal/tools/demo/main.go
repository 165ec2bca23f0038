// Command demo starts a local 3-node admitd cluster of real processes,
// asks it to admit a fresh node, an initialized node and an unreachable
// node, prints the outcomes as a table, and stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/tools/proc"
)

// waitLimit bounds each wait: staged joins take a stabilisation period each.
const waitLimit = 90 * time.Second

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
	g := &proc.Group{Dir: dir, Grace: 10 * time.Second}
	defer g.StopAll()
	start := func(id string, args ...string) (*proc.Process, error) {
		return g.Admitd(bin, id, nil, append([]string{"--policies", "policies"}, args...)...)
	}
	n1, err := start("n1", "--bootstrap")
	if err != nil {
		return err
	}
	n2, err := start("n2", "--join", n1.URL)
	if err != nil {
		return err
	}
	if _, err := start("n3", "--join", n1.URL); err != nil {
		return err
	}
	fmt.Println("waiting for a 3-voter cluster ...")
	if err := n1.WaitHealthyVoters(3, waitLimit); err != nil {
		return err
	}
	return admitAll(start, n2.URL)
}

// admitAll asks a follower to admit three candidates and prints a table.
func admitAll(start func(string, ...string) (*proc.Process, error), server string) error {
	fresh, err := start("n4")
	if err != nil {
		return err
	}
	other, err := start("x1", "--bootstrap")
	if err != nil {
		return err
	}
	// Free ports nothing listens on: the unreachable node.
	goneRaft, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	goneAPI, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	gone := facts.Candidate{ID: "n6", RaftAddr: goneRaft, APIURL: "http://" + goneAPI}
	for _, p := range []*proc.Process{fresh, other} {
		if err := p.WaitReady("/v1/state", waitLimit); err != nil {
			return err
		}
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
		d, err := cl.Admit(context.Background(), server, api.AdmissionRequest{Candidate: r.cand})
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
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := cl.AwaitPromotion(ctx, server, d, nil)
	if err != nil {
		return fmt.Errorf("waiting for the promotion of %s: %w", d.Candidate.ID, err)
	}
	fmt.Printf("%s: %s after %s (admission %s, %d decisions)\n", d.Candidate.ID, st.State,
		time.Since(start).Round(100*time.Millisecond), d.AdmissionID, len(st.Decisions))
	return nil
}

func cand(p *proc.Process) facts.Candidate {
	return facts.Candidate{ID: p.Name, RaftAddr: p.RaftAddr, APIURL: p.URL}
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
