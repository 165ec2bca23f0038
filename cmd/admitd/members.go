package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/client"
)

func newRemoveCmd() *cobra.Command {
	var server, id string
	cmd := &cobra.Command{
		Use:   "remove --server URL --id ID",
		Short: "Remove a member and tombstone its id",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || id == "" {
				return usageErr(errors.New("--server and --id are required"))
			}
			rm, err := client.New(30*time.Second).RemoveMember(cmd.Context(), server, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s at index %d (decided by %s); its id is tombstoned until cleared\n", rm.ID, rm.Index, rm.DecidedBy)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API URL of any cluster node")
	cmd.Flags().StringVar(&id, "id", "", "member id")
	return cmd
}

func newClearTombstoneCmd() *cobra.Command {
	var server, id string
	cmd := &cobra.Command{
		Use:   "clear-tombstone --server URL --id ID",
		Short: "Allow a removed member's id to be admitted again",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || id == "" {
				return usageErr(errors.New("--server and --id are required"))
			}
			if err := client.New(30*time.Second).ClearTombstone(cmd.Context(), server, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tombstone for %s cleared\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API URL of any cluster node")
	cmd.Flags().StringVar(&id, "id", "", "member id")
	return cmd
}
