package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/render"
	"github.com/admitd/admitd/internal/version"
)

// versionReport is `admitd version -o json`: the build, then the policy
// set the command would run with.
type versionReport struct {
	version.Build
	Policies policiesReport `json:"policies"`
}

// policiesReport names the active policy set; Error is set, and Source
// and Revision empty, when it does not load.
type policiesReport struct {
	Source   string `json:"source"`
	Revision string `json:"revision"`
	Error    string `json:"error,omitempty"`
}

func newVersionCmd() *cobra.Command {
	var dir, output string
	cmd := &cobra.Command{
		Use:   "version [--policies DIR] [-o table|json]",
		Short: "Print the version, the build and the active policy set",
		Long: `Print the release version, what the binary knows of its build (module
version, commit, Go version, platform) and the policy set a command run
here would use, with its revision. --policies is a policy directory;
without it, ./policies if there is one, else the set embedded in the
binary. admitd --version prints the build lines alone.

Exit status: 0 (also when the policy set does not load: that is
reported, not an error), 2 usage.`,
		Example: `  # the build and the active policy set
  admitd version

  # a site's policy set, as JSON for an inventory
  admitd version --policies /etc/admitd/policies -o json

  # the build alone
  admitd --version`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != render.Table && output != render.JSON {
				return usageErr(fmt.Errorf("invalid argument %q for \"-o, --output\" flag: must be table or json", output))
			}
			rep := versionReport{Build: version.Info()}
			if engine, err := loadEngine(cmd, dir); err != nil {
				rep.Policies.Error = err.Error()
			} else {
				rep.Policies.Source, rep.Policies.Revision = engine.Source(), engine.Revision()
			}
			out := cmd.OutOrStdout()
			if output == render.JSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			fmt.Fprintln(out, buildText(rep.Build))
			if rep.Policies.Error != "" {
				fmt.Fprintf(out, "policies: not loadable: %s\n", rep.Policies.Error)
				return nil
			}
			fmt.Fprintf(out, "policies: %s\npolicy revision: %s\n", rep.Policies.Source, rep.Policies.Revision)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "policies", "", "policy directory (default ./policies, else the embedded set)")
	cmd.Flags().StringVarP(&output, "output", "o", render.Table, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{render.Table + "\tfor people", render.JSON + "\tthe build and the policy set, for programs"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// addVersionFlag gives the root command --version, printing the same
// build lines as `admitd version` without loading any policy set.
func addVersionFlag(root *cobra.Command) {
	root.Version = buildText(version.Info())
	root.SetVersionTemplate("{{.Version}}\n")
}

// buildText is the build part of `admitd version`, one fact a line.
func buildText(b version.Build) string {
	commit := b.Commit
	switch {
	case commit == "":
		commit = "unknown (not built from a checkout)"
	case b.Modified:
		commit += "-dirty"
	}
	if b.CommitAt != "" {
		commit += " (" + b.CommitAt + ")"
	}
	return strings.Join([]string{
		"admitd " + b.Version,
		"module: " + b.Module,
		"commit: " + commit,
		"go: " + b.GoVersion,
		"platform: " + b.Platform,
	}, "\n")
}
