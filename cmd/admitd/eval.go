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
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd, f)
		},
	}
	cmd.Flags().StringVar(&f.policies, "policies", "", "policy directory (default ./policies, else the embedded set)")
	cmd.Flags().StringVar(&f.facts, "facts", "", "facts document file, or - for standard input")
	cmd.Flags().StringVarP(&f.output, "output", "o", render.Table, "output format: table or json")
	cmd.Flags().BoolVar(&f.explain, "explain", false, "show the rules that fired or failed in each evaluated stage")
	return cmd
}

func runEval(cmd *cobra.Command, f evalFlags) error {
	if f.facts == "" {
		return usageErr(errors.New("--facts is required"))
	}
	if err := render.CheckFormat(f.output); err != nil {
		return usageErr(err)
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
