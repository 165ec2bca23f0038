package main

import (
	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/daemon"
	"github.com/admitd/admitd/internal/server"
)

// registerOps adds the operations flags of `admitd serve`: mode, decision
// log, site facts, policy tests and reloads.
func registerOps(cmd *cobra.Command, o *daemon.OpsConfig) {
	fl := cmd.Flags()
	enumVarP(cmd, &o.Mode, "mode", "", server.ModeEnforce, "enforce, or dry-run: decide and log admissions, never change membership",
		server.ModeEnforce+"\tdecide and change membership", server.ModeDryRun+"\tdecide and log, never change membership")
	fl.StringVar(&o.DecisionLog.File, "decision-log", "", "write every decision as an OPA-style JSON line to FILE, or - for standard output (default: none)")
	fl.IntVar(&o.DecisionLog.MaxSizeMB, "decision-log-max-size-mb", 100, "rotate the decision log file when it reaches this many megabytes")
	fl.IntVar(&o.DecisionLog.MaxBackups, "decision-log-max-backups", 5, "rotated decision log files to keep (0 keeps all)")
	fl.StringArrayVar(&o.DecisionLog.Mask, "decision-log-mask", nil, "JSON pointer to erase from every decision log line, such as /input/site/token (repeatable)")
	fl.StringVar(&o.SiteFacts, "site-facts", "", "JSON object file given to every admission as input.site; reloaded with the policies")
	fl.BoolVar(&o.PolicyTests, "policy-tests", true, "run the policy set's *_test.rego before using it, at start and on every reload")
	fl.BoolVar(&o.AllowUntested, "allow-untested-policies", false, "accept a policy set with no *_test.rego test (a warning at every load); refused otherwise")
	fl.BoolVar(&o.Watch, "watch-policies", true, "reload when a file in the policy directory or the site facts file changes")
	fl.DurationVar(&o.Debounce, "watch-debounce", daemon.DefaultDebounce, "wait for file changes to settle this long before reloading")
	fileFlags(cmd, nil, "decision-log")
	fileFlags(cmd, []string{"json"}, "site-facts")
}

// prepareOps checks the operations flags; a bad value is a usage error.
func prepareOps(cmd *cobra.Command, cfg *daemon.Config) error {
	if err := cfg.Ops.Check(); err != nil {
		return usageErr(err)
	}
	cfg.Ops.DecisionLog.Stdout = cmd.OutOrStdout()
	return nil
}
