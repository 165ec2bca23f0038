package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

// votersPoll paces --wait-voters.
const votersPoll = 500 * time.Millisecond

func newStatusCmd() *cobra.Command {
	var output string
	var wantVoters int
	var timeout time.Duration
	var creds clientFlags
	cmd := &cobra.Command{
		Use:   "status [--server URL] [--wait-voters N [--timeout D]] [-o table|json]",
		Short: "Show a node's state and its cluster",
		Long: `Show a node's state and its cluster as the leader sees it: the
configuration, each member's suffrage, health, lag and policy revision,
whether every member runs the same policy revision, and the progress of
the staged non-voters.

--wait-voters N first waits, up to --timeout, until the cluster has at
least N voters, every voter healthy, and no staged non-voter pending,
then prints the status. A script that starts nodes can go on from there:
a member count alone is reached while the last node is still a staged
non-voter, which holds the staging slot, so the next join would be
denied STAGING_FULL. While the node starts, has no leader yet or does
not answer, it is asked again. Progress goes to standard error: one
updating line on a terminal, else a line at each change.

` + clientEnvHelp + `

Exit status: 0 shown (with --wait-voters: once the voters were there),
1 error (the node did not answer; the voters were not there within
--timeout), 2 usage.`,
		Example: `  # the local node and its cluster
  admitd status

  # another node, as JSON
  admitd status --server http://127.0.0.1:7410 -o json

  # in a script: go on once 3 voters are healthy and nothing is staged
  admitd status --server http://127.0.0.1:7400 --wait-voters 3 --timeout 60s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := creds.prepare(cmd); err != nil {
				return err
			}
			if wantVoters < 0 {
				return usageErr(fmt.Errorf("--wait-voters must be 0 (no wait) or more, got %d", wantVoters))
			}
			if cmd.Flags().Changed("timeout") && wantVoters == 0 {
				return usageErr(errors.New("--timeout bounds --wait-voters: give both, or neither"))
			}
			if err := positive("timeout", timeout); err != nil {
				return err
			}
			cl, err := creds.client(cmd, 10*time.Second)
			if err != nil {
				return err
			}
			server := creds.server
			if wantVoters > 0 {
				stderr := cmd.ErrOrStderr()
				if err := waitVoters(cmd.Context(), cl, server, wantVoters, timeout, stderr, isTerminal(stderr)); err != nil {
					return err
				}
			}
			st, err := cl.State(cmd.Context(), server)
			if err != nil {
				return err
			}
			view, topoErr := cl.Cluster(cmd.Context(), server)
			return render.Status(cmd.OutOrStdout(), output, st, view.Topology, view.Staging, topoErr)
		},
	}
	fl := cmd.Flags()
	outputFlag(cmd, &output)
	fl.IntVar(&wantVoters, "wait-voters", 0, "wait until the cluster has at least `N` voters, all healthy, and no staged non-voter, then print the status (0: no wait)")
	fl.DurationVar(&timeout, "timeout", time.Minute, "give up --wait-voters after this long (exit 1)")
	creds.register(cmd)
	noFileCompletion(cmd)
	return cmd
}

// waitVoters polls server's /v1/cluster until it has at least want
// voters, all healthy, and nothing staged, or timeout passes. A node that
// does not answer yet or has no leader is asked again; any other error
// ends the wait. On a terminal (tty) progress is one line, rewritten.
func waitVoters(ctx context.Context, cl *client.Client, server string, want int, timeout time.Duration, progress io.Writer, tty bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer clearLine(progress, tty)
	deadline, _ := ctx.Deadline()
	var shown, last string
	for {
		view, err := cl.Cluster(ctx, server)
		var summary, line string
		switch {
		case err != nil && ctx.Err() != nil:
			// The call was cut short by the deadline: what was seen
			// before it is the answer.
		case err != nil && !client.Transient(err):
			return err
		case err != nil:
			summary = "no answer yet: " + err.Error()
			line, last = summary, summary
		default:
			summary = lacking(view, want, false)
			if summary == "" {
				return nil
			}
			last = lacking(view, want, true)
			line = last
			if tty {
				line = summary + catchUp(view)
			}
		}
		if tty && line != "" {
			fmt.Fprintf(progress, "\r\033[Kwaiting for %s: %s; %s left", voterCount(want), line, time.Until(deadline).Round(time.Second))
		} else if !tty && summary != "" && summary != shown {
			fmt.Fprintf(progress, "waiting for %s: %s\n", voterCount(want), summary)
			shown = summary
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "no answer"
			}
			return fmt.Errorf("--wait-voters %d: not reached within %s: %s", want, timeout, last)
		case <-time.After(votersPoll):
		}
	}
}

// lacking says what the cluster lacks for want voters, all healthy and
// nothing staged, "" when nothing. It changes only when the membership
// does; why adds each staged non-voter's last promote decision.
func lacking(view api.ClusterView, want int, why bool) string {
	if !view.Collected {
		return "the topology was not collected: " + view.Error
	}
	var voters, unhealthy []string
	for _, s := range view.Servers {
		if s.Suffrage != facts.Voter {
			continue
		}
		voters = append(voters, s.ID)
		if !s.Healthy {
			unhealthy = append(unhealthy, s.ID)
		}
	}
	staged := slices.Clone(view.Staged)
	for _, p := range view.Staging {
		if !slices.Contains(staged, p.ID) {
			staged = append(staged, p.ID)
		}
	}
	// Sorted, so that a message does not change with the configuration's order.
	slices.Sort(voters)
	slices.Sort(unhealthy)
	slices.Sort(staged)
	var gaps []string
	if len(voters) < want {
		gaps = append(gaps, fmt.Sprintf("%d of %s (%s)", len(voters), voterCount(want), listOrNone(voters)))
	}
	if len(unhealthy) > 0 {
		gaps = append(gaps, "voters not healthy: "+strings.Join(unhealthy, ", "))
	}
	if len(staged) > 0 {
		gaps = append(gaps, "staged non-voters not yet promoted: "+strings.Join(staged, ", "))
	}
	if why {
		for _, p := range view.Staging {
			if p.Reason != "" {
				gaps = append(gaps, fmt.Sprintf("%s's last promote decision: %s", p.ID, p.Reason))
			}
		}
	}
	return strings.Join(gaps, "; ")
}

// catchUp is the staged non-voters' progress, for the terminal line.
func catchUp(view api.ClusterView) string {
	var b strings.Builder
	for _, p := range view.Staging {
		if c := p.CatchUp; c != nil && c.Collected {
			fmt.Fprintf(&b, " (%s: lag %d, healthy %.1f s)", p.ID, c.Lag, c.HealthyForMS/1000)
		}
	}
	return b.String()
}

func voterCount(n int) string {
	if n == 1 {
		return "1 voter"
	}
	return fmt.Sprintf("%d voters", n)
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
