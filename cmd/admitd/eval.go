package main

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/policyset"
	"github.com/admitd/admitd/internal/render"
)

type evalFlags struct {
	policies string
	facts    string
	output   string
	explain  bool
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval --facts FILE|- [--policies DIR] [-o table|json]",
		Short: "Evaluate a facts document offline",
		Long: `Evaluate an admitd.facts/v1 document with a policy set, offline, and
print the decision: the stages in order, the first one that did not
allow, each deny and warning. Nothing is collected and no cluster is
asked; it is how a policy change is tried on recorded facts (a decision
log's input, a scenario under testdata/).

--policies is a policy directory; without it, ./policies if there is
one, else the set embedded in the binary.

Exit status: 0 allowed, 1 error (a malformed document, a policy set that
does not load), 2 usage, 3 denied.`,
		Example: `  # the shipped policies on a recorded facts document
  admitd eval --facts testdata/scenarios/order-unreachable-and-initialized/facts.json

  # a policy directory, the document from standard input, the rules that fired
  admitd eval --policies ./policies --facts - --explain < facts.json

  # the full decision as JSON
  admitd eval --facts facts.json -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd, f)
		},
	}
	cmd.Flags().StringVar(&f.policies, "policies", "", "policy directory (default ./policies, else the embedded set)")
	cmd.Flags().StringVar(&f.facts, "facts", "", "facts document file, or - for standard input")
	outputFlag(cmd, &f.output)
	cmd.Flags().BoolVar(&f.explain, "explain", false, "show the rules that fired or failed in each evaluated stage")
	dirFlags(cmd, "policies")
	fileFlags(cmd, []string{"json"}, "facts")
	return cmd
}

func runEval(cmd *cobra.Command, f evalFlags) error {
	if f.facts == "" {
		return usageErr(errors.New("--facts is required"))
	}
	engine, err := loadEngine(cmd, f.policies)
	if err != nil {
		return err
	}
	in, err := readFacts(cmd.InOrStdin(), f.facts)
	if err != nil {
		return err
	}
	d := engine.Evaluate(cmd.Context(), in)
	if f.explain {
		engine.Explain(cmd.Context(), in, d)
	}
	if err := render.Decision(cmd.OutOrStdout(), f.output, d); err != nil {
		return err
	}
	if !d.Allowed {
		return &exitCode{code: exitDenied}
	}
	return nil
}

func loadEngine(cmd *cobra.Command, dir string) (*admission.Engine, error) {
	src, err := policyset.Resolve(dir)
	if err != nil {
		return nil, err
	}
	return admission.Load(cmd.Context(), src)
}

func readFacts(stdin io.Reader, name string) (*admission.Input, error) {
	r := stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r = file
	}
	d, err := facts.Decode(r)
	if err != nil {
		return nil, err
	}
	return admission.NewInput(d)
}
