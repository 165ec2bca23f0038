package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newRemoveCmd() *cobra.Command {
	var server, id string
	var creds clientFlags
	cmd := &cobra.Command{
		Use:   "remove --server URL --id ID",
		Short: "Remove a member and tombstone its id",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || id == "" {
				return usageErr(errors.New("--server and --id are required"))
			}
			cl, err := creds.client(30 * time.Second)
			if err != nil {
				return err
			}
			rm, err := cl.RemoveMember(cmd.Context(), server, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s at index %d (decided by %s); its id is tombstoned until cleared\n", rm.ID, rm.Index, rm.DecidedBy)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API URL of any cluster node")
	cmd.Flags().StringVar(&id, "id", "", "member id")
	creds.register(cmd)
	return cmd
}

func newClearTombstoneCmd() *cobra.Command {
	var server, id string
	var creds clientFlags
	cmd := &cobra.Command{
		Use:   "clear-tombstone --server URL --id ID",
		Short: "Allow a removed member's id to be admitted again",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || id == "" {
				return usageErr(errors.New("--server and --id are required"))
			}
			cl, err := creds.client(30 * time.Second)
			if err != nil {
				return err
			}
			if err := cl.ClearTombstone(cmd.Context(), server, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tombstone for %s cleared\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API URL of any cluster node")
	cmd.Flags().StringVar(&id, "id", "", "member id")
	creds.register(cmd)
	return cmd
}
