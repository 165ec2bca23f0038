package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

type joinFlags struct {
	server  string
	req     client.AdmitRequest
	output  string
	timeout time.Duration
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
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up waiting for the decision after this long")
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
	cl, err := f.creds.client(f.timeout)
	if err != nil {
		return err
	}
	d, err := cl.Admit(cmd.Context(), f.server, f.req)
	if err != nil {
		return err
	}
	if err := render.Decision(cmd.OutOrStdout(), f.output, d); err != nil {
		return err
	}
	if !d.Allowed {
		return &exitCode{code: exitDenied}
	}
	return nil
}
