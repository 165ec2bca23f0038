package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

type joinFlags struct {
	server  string
	req     client.AdmitRequest
	output  string
	timeout time.Duration
	noWait  bool
	wait    time.Duration
	creds   clientFlags
}

func newJoinCmd() *cobra.Command {
	var f joinFlags
	cmd := &cobra.Command{
		Use:   "join --server URL --id ID --raft-addr ADDR --api-url URL [--dry-run] [-o table|json]",
		Short: "Ask a cluster to admit a candidate",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJoin(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "API URL of any cluster node")
	fl.StringVar(&f.req.Candidate.ID, "id", "", "candidate id")
	fl.StringVar(&f.req.Candidate.RaftAddr, "raft-addr", "", "candidate raft address")
	fl.StringVar(&f.req.Candidate.APIURL, "api-url", "", "candidate API URL")
	fl.BoolVar(&f.req.DryRun, "dry-run", false, "decide without changing the cluster")
	fl.BoolVar(&f.req.Explain, "explain", false, "show the rules that fired or failed in each evaluated stage")
	fl.StringVarP(&f.output, "output", "o", render.Table, "output format: table or json")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Minute, "keep asking, while the answer is a deny that may pass (a staging slot in use, a voter down) or no leader yet, for this long")
	fl.BoolVar(&f.noWait, "no-wait", false, "ask once, and return once a staged candidate is a non-voter, without waiting for its promotion")
	fl.DurationVar(&f.wait, "wait-timeout", 10*time.Minute, "give up waiting for a staged candidate's promotion after this long")
	f.creds.register(cmd)
	return cmd
}

func runJoin(cmd *cobra.Command, f joinFlags) error {
	if f.server == "" {
		return usageErr(errors.New("--server is required"))
	}
	if err := facts.ValidateHTTPURL(f.server); err != nil {
		return usageErr(errors.New("--server: " + err.Error()))
	}
	if err := f.req.Candidate.Validate(); err != nil {
		return usageErr(err)
	}
	if err := render.CheckFormat(f.output); err != nil {
		return usageErr(err)
	}
	cl, err := f.creds.client(min(f.timeout, callTimeout))
	if err != nil {
		return err
	}
	d, err := admitOnce(cmd, cl, f)
	if err != nil {
		return err
	}
	if d.AlreadyMember != "" {
		return show(cmd, f.output, d)
	}
	if d.Allowed && d.Applied == nil && !f.req.DryRun {
		// The cluster decided in dry-run mode (or did not apply): no join.
		_ = render.Decision(cmd.OutOrStdout(), f.output, d)
		return fmt.Errorf("%s was allowed but not added (%s): the cluster did not change", d.Candidate.ID, notAppliedWhy(d))
	}
	if !staged(d) || f.noWait || f.req.DryRun {
		return show(cmd, f.output, d)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s is a non-voter (admission %s); waiting for its promotion\n", d.Candidate.ID, d.AdmissionID)
	ctx, cancel := context.WithTimeout(cmd.Context(), f.wait)
	defer cancel()
	st, err := waitPromotion(ctx, cl, f.server, d, cmd.ErrOrStderr())
	if err != nil {
		_ = show(cmd, f.output, d)
		return err
	}
	if len(st.Decisions) == 0 { // settled by an earlier leader
		fmt.Fprintf(cmd.ErrOrStderr(), "%s was %s; the decision is in the log of the leader that made it\n", d.Candidate.ID, st.State)
	}
	if newest := last(st, d); st.State == admission.StatePromoted {
		if newest.Applied == nil || newest.Applied.Suffrage != facts.Voter {
			// The configuration says voter; its decision is a moment behind.
			fmt.Fprintf(cmd.OutOrStdout(), "%s promoted to voter (admission %s)\n", d.Candidate.ID, d.AdmissionID)
			return nil
		}
		return render.Decision(cmd.OutOrStdout(), f.output, newest)
	}
	if err := show(cmd, f.output, last(st, d)); err != nil {
		return err
	}
	return &exitCode{code: exitDenied}
}

// callTimeout bounds one call to the cluster.
const callTimeout = 60 * time.Second

// admitOnce asks for the admission: once with --no-wait or --dry-run,
// else until it is decided for good or --timeout passes.
func admitOnce(cmd *cobra.Command, cl *client.Client, f joinFlags) (*admission.Decision, error) {
	if f.noWait || f.req.DryRun {
		return cl.Admit(cmd.Context(), f.server, f.req)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	return admitRetrying(ctx, cl, f.server, f.req, cmd.ErrOrStderr())
}

func notAppliedWhy(d *admission.Decision) string {
	if !d.Enforced {
		return "the server runs in dry-run mode"
	}
	return d.Reason
}

// show prints a decision; a deny exits 3.
func show(cmd *cobra.Command, format string, d *admission.Decision) error {
	if err := render.Decision(cmd.OutOrStdout(), format, d); err != nil {
		return err
	}
	if !d.Allowed || d.Removed != nil {
		return &exitCode{code: exitDenied}
	}
	return nil
}

// last is the admission's newest decision: the promotion, or the removal.
func last(st *admission.Status, d *admission.Decision) *admission.Decision {
	if len(st.Decisions) > 0 {
		return st.Decisions[0]
	}
	return d
}
