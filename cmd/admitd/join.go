package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

type joinFlags struct {
	req     api.AdmissionRequest
	output  string
	timeout time.Duration
	noWait  bool
	wait    time.Duration
	creds   clientFlags
}

func newJoinCmd() *cobra.Command {
	var f joinFlags
	cmd := &cobra.Command{
		Use:   "join --id ID --raft-addr ADDR [--api-url URL] [--server URL] [--dry-run] [-o table|json]",
		Short: "Ask a cluster to admit a candidate",
		Long: `Ask a cluster to admit a candidate, and print the decision.

Any node of the cluster can be asked (--server); a follower forwards to
the leader. The leader collects the candidate's facts, evaluates the
policy stages and, on an allow, adds it: by default as a non-voter first,
then join waits until the leader promotes it (--wait-timeout), showing its
catch-up on a terminal. --no-wait returns once it is a non-voter.

A deny that may pass when asked again (a staging slot in use, a voter
down), a cluster without a leader yet and a server that does not answer
are asked again with backoff until --timeout; a deny that will not pass
(an initialized candidate, a duplicate id) ends at once.

The candidate needs an id and a raft address; --api-url is optional (a
candidate that runs nothing but raft has none).

--server, --token-file, --tls-ca, --tls-cert and --tls-key fall back to
ADMITD_SERVER, ADMITD_TOKEN_FILE, ADMITD_TLS_CA, ADMITD_TLS_CERT and
ADMITD_TLS_KEY; a flag given wins.

Exit status: 0 admitted (promoted; a non-voter with --no-wait; allowed in
a dry run; already a member), 1 error (no answer, or allowed but not
applied), 2 usage, 3 denied (or removed before its promotion).`,
		Example: `  # admit n4 and wait for its promotion
  admitd join --server http://127.0.0.1:7400 --id n4 --raft-addr 127.0.0.1:7431 --api-url http://127.0.0.1:7430

  # what would the policies decide? nothing changes
  admitd join --id n4 --raft-addr 127.0.0.1:7431 --api-url http://127.0.0.1:7430 --dry-run --explain

  # a token and mTLS from the environment
  export ADMITD_SERVER=https://127.0.0.1:7400 ADMITD_TOKEN_FILE=token
  export ADMITD_TLS_CA=ca.pem ADMITD_TLS_CERT=operator.pem ADMITD_TLS_KEY=operator-key.pem
  admitd join --id n4 --raft-addr 127.0.0.1:7431 --api-url https://127.0.0.1:7430 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJoin(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.req.Candidate.ID, "id", "", "candidate id (required)")
	fl.StringVar(&f.req.Candidate.RaftAddr, "raft-addr", "", "candidate raft address, host:port (required)")
	fl.StringVar(&f.req.Candidate.APIURL, "api-url", "", "candidate API URL (optional: a candidate may run nothing but raft)")
	fl.BoolVar(&f.req.DryRun, "dry-run", false, "decide without changing the cluster")
	fl.BoolVar(&f.req.Explain, "explain", false, "show the rules that fired or failed in each evaluated stage")
	outputFlag(cmd, &f.output)
	fl.DurationVar(&f.timeout, "timeout", 3*time.Minute, "keep asking, while the answer is a deny that may pass (a staging slot in use, a voter down) or no leader yet, for this long")
	fl.BoolVar(&f.noWait, "no-wait", false, "ask once, and return once a staged candidate is a non-voter, without waiting for its promotion")
	fl.DurationVar(&f.wait, "wait-timeout", 10*time.Minute, "give up waiting for a staged candidate's promotion after this long")
	f.creds.register(cmd)
	noFileCompletion(cmd)
	return cmd
}

// checkCandidate checks the candidate flags, each error naming its flag.
func checkCandidate(c facts.Candidate) error {
	switch {
	case c.ID == "":
		return usageErr(errors.New("--id is required (the candidate's raft server id)"))
	case facts.ValidateID(c.ID) != nil:
		return usageErr(fmt.Errorf("--id: %v", facts.ValidateID(c.ID)))
	case c.RaftAddr == "":
		return usageErr(errors.New("--raft-addr is required (the candidate's raft address, host:port)"))
	case facts.ValidateHostPort(c.RaftAddr) != nil:
		return usageErr(fmt.Errorf("--raft-addr: %v", facts.ValidateHostPort(c.RaftAddr)))
	case c.APIURL != "" && facts.ValidateHTTPURL(c.APIURL) != nil:
		return usageErr(fmt.Errorf("--api-url: %v", facts.ValidateHTTPURL(c.APIURL)))
	}
	// Anything the request's own check adds still fails before a call.
	if err := c.Validate(); err != nil {
		return usageErr(err)
	}
	return nil
}

// positive refuses a zero or negative duration flag.
func positive(name string, d time.Duration) error {
	if d <= 0 {
		return usageErr(fmt.Errorf("--%s must be positive, got %s", name, d))
	}
	return nil
}

// runJoin takes the flags by pointer: the environment fills them in.
func runJoin(cmd *cobra.Command, f *joinFlags) error {
	if err := f.creds.prepare(cmd); err != nil {
		return err
	}
	if err := checkCandidate(f.req.Candidate); err != nil {
		return err
	}
	if err := positive("timeout", f.timeout); err != nil {
		return err
	}
	if err := positive("wait-timeout", f.wait); err != nil {
		return err
	}
	server := f.creds.server
	cl, err := f.creds.client(cmd, min(f.timeout, callTimeout))
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
	st, err := waitPromotion(ctx, cl, server, d, cmd.ErrOrStderr())
	if err != nil {
		_ = show(cmd, f.output, d)
		return err
	}
	if len(st.Decisions) == 0 { // settled by an earlier leader
		fmt.Fprintf(cmd.ErrOrStderr(), "%s was %s; the decision is in the log of the leader that made it\n", d.Candidate.ID, st.State)
	}
	if newest := last(st, d); st.State == api.StatePromoted {
		if newest.Applied == nil || newest.Applied.Suffrage != facts.Voter {
			// The configuration says voter; its decision never showed up
			// within the grace (leadership moved): say so in the format asked.
			fmt.Fprintf(cmd.ErrOrStderr(), "%s promoted to voter (admission %s); the promotion's decision is not recorded on this leader\n", d.Candidate.ID, d.AdmissionID)
			if f.output == render.JSON {
				return render.WriteJSON(cmd.OutOrStdout(), st)
			}
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
func admitOnce(cmd *cobra.Command, cl *client.Client, f *joinFlags) (*admission.Decision, error) {
	if f.noWait || f.req.DryRun {
		return cl.Admit(cmd.Context(), f.creds.server, f.req)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	return admitRetrying(ctx, cl, f.creds.server, f.req, cmd.ErrOrStderr())
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
func last(st *api.AdmissionStatus, d *admission.Decision) *admission.Decision {
	if len(st.Decisions) > 0 {
		return st.Decisions[0]
	}
	return d
}
