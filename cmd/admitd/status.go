package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/render"
)

func newStatusCmd() *cobra.Command {
	var server, output string
	var creds clientFlags
	cmd := &cobra.Command{
		Use:   "status --server URL [-o table|json]",
		Short: "Show a node's state and its cluster",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usageErr(errors.New("--server is required"))
			}
			if err := render.CheckFormat(output); err != nil {
				return usageErr(err)
			}
			cl, err := creds.client(10 * time.Second)
			if err != nil {
				return err
			}
			st, err := cl.State(cmd.Context(), server)
			if err != nil {
				return err
			}
			view, topoErr := cl.Cluster(cmd.Context(), server)
			return render.Status(cmd.OutOrStdout(), output, st, view.Topology, view.Staging, topoErr)
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://127.0.0.1:7400", "API URL of a node")
	cmd.Flags().StringVarP(&output, "output", "o", render.Table, "output format: table or json")
	creds.register(cmd)
	return cmd
}
