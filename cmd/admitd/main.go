// Command admitd is the admission gate for Raft cluster membership.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitDenied = 3
)

// exitCode carries a command's exit status and an optional message.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func usageErr(err error) error { return &exitCode{code: exitUsage, err: err} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := unknownCommand(root, args)
	if err == nil {
		err = root.Execute()
	}
	if err == nil {
		return exitOK
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintln(stderr, "admitd:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(stderr, "admitd:", err)
	return exitError
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "admitd",
		Short: "Policy-driven admission gate for Raft cluster membership",
		Long: `admitd decides, by Rego policies evaluated in order, whether a node may join a
hashicorp/raft cluster (reachable, not initialized, safe for the quorum), and
whether a member may be removed or demoted; only then does it change the
membership. admitd serve runs a node; the other commands ask one.

The client commands find their server in --server or ADMITD_SERVER (default
http://127.0.0.1:7400) and their credentials in --token-file/ADMITD_TOKEN_FILE
and --tls-cert, --tls-key, --tls-ca/ADMITD_TLS_CERT, _KEY, _CA.

Exit status, for every command: 0 ok (allowed), 1 error, 2 usage (an unknown
command or flag, a missing or bad flag value), 3 denied by the policies.`,
		Example: `  admitd serve --id n1 --bootstrap
  admitd serve --id n2 --join http://127.0.0.1:7400 --http-addr 127.0.0.1:7410 --raft-addr 127.0.0.1:7411
  admitd status --wait-voters 2 --timeout 2m
  admitd join --id n4 --raft-addr 127.0.0.1:7431 --api-url http://127.0.0.1:7430
  admitd eval --facts facts.json --explain`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	addVersionFlag(root)
	root.AddCommand(newServeCmd(), newJoinCmd(), newEvalCmd(), newStatusCmd(), newRemoveCmd(), newDemoteCmd(), newClearTombstoneCmd(), newVersionCmd(), newTLSCmd())
	return root
}

// unknownCommand makes a command that does not exist a usage error:
// cobra reports one under the root as a plain error, and answers one under
// a command group (`completion fish2`) with the group's help and success.
func unknownCommand(root *cobra.Command, args []string) error {
	if len(args) > 0 && strings.HasPrefix(args[0], cobra.ShellCompRequestCmd) {
		return nil
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd(args...)
	cmd, rest, err := root.Find(args)
	if err != nil {
		return usageErr(err)
	}
	if cmd.Runnable() || !cmd.HasSubCommands() {
		return nil
	}
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			return usageErr(fmt.Errorf("unknown command %q for %q (see %s --help)", a, cmd.CommandPath(), cmd.CommandPath()))
		}
	}
	return nil
}

// exactArgs makes wrong positional arguments a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr(fmt.Errorf("unexpected arguments %v", args))
	}
	return nil
}
