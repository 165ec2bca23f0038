package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

// memberCmd builds a command that acts on one member id of a cluster.
func memberCmd(use, short string, act func(cmd *cobra.Command, cl *client.Client, server, id string) error) *cobra.Command {
	var server, id string
	var creds clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || id == "" {
				return usageErr(errors.New("--server and --id are required"))
			}
			cl, err := creds.client(30 * time.Second)
			if err != nil {
				return err
			}
			return act(cmd, cl, server, id)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API URL of any cluster node")
	cmd.Flags().StringVar(&id, "id", "", "member id")
	creds.register(cmd)
	return cmd
}

func newRemoveCmd() *cobra.Command {
	return changeCmd("remove", "Remove a member, as the policies allow, and tombstone its id", false)
}

func newDemoteCmd() *cobra.Command {
	return changeCmd("demote", "Make a voter a non-voter, as the policies allow; the promote phase judges when it votes again", true)
}

// changeCmd asks for a removal or a demotion and prints the decision as
// join does: exit 0 applied, 3 denied, 1 error, 2 usage.
func changeCmd(name, short string, demote bool) *cobra.Command {
	var req client.ChangeRequest
	var codes []string
	var reason, output string
	cmd := memberCmd(name+" --server URL --id ID [--dry-run] [--override CODE --reason TEXT] [-o table|json]", short,
		func(cmd *cobra.Command, cl *client.Client, server, id string) error {
			if err := render.CheckFormat(output); err != nil {
				return usageErr(err)
			}
			if len(codes) > 0 || reason != "" {
				req.Override = &admission.Override{Codes: codes, Reason: reason}
				if err := req.Override.Validate(); err != nil {
					return usageErr(fmt.Errorf("--override and --reason: %v", err))
				}
			}
			call := cl.Remove
			if demote {
				call = cl.Demote
			}
			d, err := call(cmd.Context(), server, id, req)
			if err != nil {
				return err
			}
			if err := render.Decision(cmd.OutOrStdout(), output, d); err != nil {
				return err
			}
			if !d.Allowed {
				return &exitCode{code: exitDenied}
			}
			if d.Removed == nil && d.Applied == nil && !req.DryRun {
				return fmt.Errorf("%s was allowed but not changed (%s): the cluster did not change", id, notAppliedWhy(d))
			}
			return nil
		})
	fl := cmd.Flags()
	fl.BoolVar(&req.DryRun, "dry-run", false, "decide and print, change nothing")
	fl.BoolVar(&req.Explain, "explain", false, "show the rules that fired or failed in each evaluated stage")
	fl.StringSliceVar(&codes, "override", nil, "deny code to override for this change only (repeatable; needs --reason; never facts that were not collected)")
	fl.StringVar(&reason, "reason", "", "why the override is accepted, recorded in the decision log")
	fl.StringVarP(&output, "output", "o", render.Table, "output format: table or json")
	return cmd
}

func newClearTombstoneCmd() *cobra.Command {
	return memberCmd("clear-tombstone --server URL --id ID", "Allow a removed member's id to be admitted again",
		func(cmd *cobra.Command, cl *client.Client, server, id string) error {
			if err := cl.ClearTombstone(cmd.Context(), server, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tombstone for %s cleared\n", id)
			return nil
		})
}
