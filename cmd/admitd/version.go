package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/version"
)

func newVersionCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the active policy set",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "admitd %s\n", version.Version)
			engine, err := loadEngine(cmd, dir)
			if err != nil {
				fmt.Fprintf(out, "policies: not loadable: %v\n", err)
				return nil
			}
			fmt.Fprintf(out, "policies: %s\npolicy revision: %s\n", engine.Source(), engine.Revision())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "policies", "", "policy directory (default ./policies, else the embedded set)")
	return cmd
}
