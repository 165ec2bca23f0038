package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/client"
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
	return memberCmd("remove --server URL --id ID", "Remove a member and tombstone its id",
		func(cmd *cobra.Command, cl *client.Client, server, id string) error {
			rm, err := cl.RemoveMember(cmd.Context(), server, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s at index %d (decided by %s); its id is tombstoned until cleared\n", rm.ID, rm.Index, rm.DecidedBy)
			return nil
		})
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
