package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/render"
)

// clientEnvHelp is the part of every client command's description about
// the environment.
const clientEnvHelp = `--server (default ` + defaultServer + `), --token-file, --tls-ca,
--tls-cert and --tls-key fall back to ADMITD_SERVER, ADMITD_TOKEN_FILE,
ADMITD_TLS_CA, ADMITD_TLS_CERT and ADMITD_TLS_KEY; a flag given wins.`

// memberCmd builds a command that acts on one member id of a cluster.
// check, if not nil, checks the command's own flags before any file is
// read or call made.
type memberAct func(cmd *cobra.Command, cl *client.Client, server, id string) error

func memberCmd(cmd *cobra.Command, check func() error, act memberAct) *cobra.Command {
	var id string
	var creds clientFlags
	cmd.Args = noArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := creds.prepare(cmd); err != nil {
			return err
		}
		if id == "" {
			return usageErr(errors.New("--id is required (the member's raft server id)"))
		}
		if err := facts.ValidateID(id); err != nil {
			return usageErr(fmt.Errorf("--id: %v", err))
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		cl, err := creds.client(cmd, 30*time.Second)
		if err != nil {
			return err
		}
		return act(cmd, cl, creds.server, id)
	}
	cmd.Flags().StringVar(&id, "id", "", "member id (required)")
	creds.register(cmd)
	return cmd
}

func newRemoveCmd() *cobra.Command {
	return changeCmd(&cobra.Command{
		Use:   "remove --id ID [--server URL] [--dry-run] [--override CODE --reason TEXT] [-o table|json]",
		Short: "Remove a member, as the policies allow, and tombstone its id",
		Long: `Ask the cluster to remove a member, and print the decision.

The leader collects the removal's facts (the configuration, each
member's health, the site facts) and evaluates the policies: a removal
that would leave the cluster without a safe quorum, of the last voter or
of the leader, or one a site stage refuses (a maintenance window), is
denied. An allowed removal takes the member out of the raft
configuration and tombstones its id: the id is refused admission until
admitd clear-tombstone.

--override CODE --reason TEXT lifts that deny code for this removal
only, recorded in the decision log; denies about facts that were not
collected never are.

` + clientEnvHelp + `

Exit status: 0 removed (or allowed, with --dry-run), 1 error (no answer,
or allowed but not applied), 2 usage, 3 denied.`,
		Example: `  # remove n2 and tombstone its id
  admitd remove --server http://127.0.0.1:7400 --id n2

  # what would the policies decide?
  admitd remove --id n2 --dry-run --explain

  # inside a maintenance window the site policy refuses; accept it once
  admitd remove --id n2 --override MAINTENANCE_WINDOW --reason "replacing n2's disk"`,
	}, false)
}

func newDemoteCmd() *cobra.Command {
	return changeCmd(&cobra.Command{
		Use:   "demote --id ID [--server URL] [--dry-run] [--override CODE --reason TEXT] [-o table|json]",
		Short: "Make a voter a non-voter, as the policies allow; the promote phase judges when it votes again",
		Long: `Ask the cluster to make a voter a non-voter, and print the decision.

The demotion is decided as a removal is (the quorum that remains, the
leader, site stages), and an allowed one keeps the member in the
configuration as a non-voter that still receives the log. It votes
again only when the promote phase allows it, as a staged candidate does.

--override CODE --reason TEXT lifts that deny code for this demotion
only, recorded in the decision log.

` + clientEnvHelp + `

Exit status: 0 demoted (or allowed, with --dry-run), 1 error (no answer,
or allowed but not applied), 2 usage, 3 denied.`,
		Example: `  # make n3 a non-voter
  admitd demote --server http://127.0.0.1:7400 --id n3

  # as JSON, changing nothing
  admitd demote --id n3 --dry-run -o json`,
	}, true)
}

// changeCmd asks for a removal or a demotion and prints the decision as
// join does: exit 0 applied, 3 denied, 1 error, 2 usage.
func changeCmd(cmd *cobra.Command, demote bool) *cobra.Command {
	var req api.ChangeRequest
	var codes []string
	var reason, output string
	check := func() error {
		if len(codes) == 0 && reason == "" {
			return nil
		}
		switch {
		case len(codes) == 0:
			return usageErr(errors.New("--reason needs --override CODE: the deny code it accepts"))
		case strings.TrimSpace(reason) == "":
			return usageErr(errors.New("--override needs --reason TEXT: why the override is accepted, recorded in the decision log"))
		}
		req.Override = &admission.Override{Codes: codes, Reason: reason}
		if err := req.Override.Validate(); err != nil {
			return usageErr(fmt.Errorf("--override: %v", err))
		}
		return nil
	}
	memberCmd(cmd, check, func(cmd *cobra.Command, cl *client.Client, server, id string) error {
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
	outputFlag(cmd, &output)
	noFileCompletion(cmd)
	return cmd
}

func newClearTombstoneCmd() *cobra.Command {
	cmd := memberCmd(&cobra.Command{
		Use:   "clear-tombstone --id ID [--server URL]",
		Short: "Allow a removed member's id to be admitted again",
		Long: `Clear the tombstone a removal left on an id, so that a node with that
id can be admitted again, as a new node.

Clear it only once the node that had the id is gone or wiped: a node
that kept its data would come back with the log and the vote record of
the member it was.

` + clientEnvHelp + `

Exit status: 0 cleared (an id without a tombstone too), 1 error (no
answer, not authorized), 2 usage.`,
		Example: `  # after admitd remove --id n2 and wiping n2's data directory
  admitd clear-tombstone --server http://127.0.0.1:7400 --id n2`,
	}, nil, func(cmd *cobra.Command, cl *client.Client, server, id string) error {
		if err := cl.ClearTombstone(cmd.Context(), server, id); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "tombstone for %s cleared\n", id)
		return nil
	})
	noFileCompletion(cmd)
	return cmd
}
