package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/admitd/admitd/internal/render"
)

// Environment variables of the client commands, as Consul's
// CONSUL_HTTP_ADDR: a flag on the command line wins over its variable,
// the variable over the flag's default.
const (
	envServer    = "ADMITD_SERVER"
	envTokenFile = "ADMITD_TOKEN_FILE"
	envTLSCert   = "ADMITD_TLS_CERT"
	envTLSKey    = "ADMITD_TLS_KEY"
	envTLSCA     = "ADMITD_TLS_CA"
)

// defaultServer is --server of every client command: the API of a node
// started with serve's defaults.
const defaultServer = "http://127.0.0.1:7400"

// Flag annotations: the variable a flag falls back to, and the source of
// a value that did not come from the command line.
const (
	annEnv    = "admitd/env"
	annSource = "admitd/source"
)

// bindEnv makes flag name fall back to the environment variable env and
// says so in its usage text.
func bindEnv(cmd *cobra.Command, name, env string) {
	f := cmd.Flags().Lookup(name)
	f.Usage += " (env " + env + ")"
	_ = cmd.Flags().SetAnnotation(name, annEnv, []string{env})
}

// applyEnv sets every flag that was not given from its environment
// variable, when that is set and not empty, through the flag's own Set.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[annEnv]
		if err != nil || len(env) == 0 || f.Changed {
			return
		}
		v := os.Getenv(env[0])
		if v == "" {
			return
		}
		if e := cmd.Flags().Set(f.Name, v); e != nil {
			err = usageErr(fmt.Errorf("%s=%q: %v", env[0], v, unwrapFlagErr(e)))
			return
		}
		_ = cmd.Flags().SetAnnotation(f.Name, annSource, []string{env[0]})
	})
	return err
}

// flagRef names flag name in a message: "--server", or
// "--server (from ADMITD_SERVER)" when its value came from elsewhere.
func flagRef(cmd *cobra.Command, name string) string {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		return "--" + name
	}
	if src := f.Annotations[annSource]; len(src) > 0 {
		return fmt.Sprintf("--%s (from %s)", name, src[0])
	}
	return "--" + name
}

// unwrapFlagErr drops pflag's "invalid argument ... for --flag" wrapping
// when the message names the value's source itself.
func unwrapFlagErr(err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) && ive.Unwrap() != nil {
		return ive.Unwrap()
	}
	return err
}

// enumValue is a string flag that accepts only the given values, so a
// wrong one is refused while parsing, whether it comes from the command
// line, the environment or a configuration file.
type enumValue struct {
	p       *string
	allowed []string
	// fold accepts any case and stores the value in lower case.
	fold bool
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	v := s
	if e.fold {
		v = strings.ToLower(strings.TrimSpace(s))
	}
	if !slices.Contains(e.allowed, v) {
		return fmt.Errorf("must be %s", orList(e.allowed))
	}
	*e.p = v
	return nil
}

// enumVarP adds an enumValue flag; its values complete in a shell, each
// with the description after a tab in choices ("json\tthe full decision").
func enumVarP(cmd *cobra.Command, p *string, name, short, value, usage string, choices ...string) *enumValue {
	*p = value
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i], _, _ = strings.Cut(c, "\t")
	}
	e := &enumValue{p: p, allowed: names}
	cmd.Flags().VarP(e, name, short, usage)
	_ = cmd.RegisterFlagCompletionFunc(name, func(_ *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, c := range choices {
			if strings.HasPrefix(c, prefix) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	return e
}

// outputFlag adds -o/--output: table or json.
func outputFlag(cmd *cobra.Command, p *string) {
	enumVarP(cmd, p, "output", "o", render.Table, "output format: table or json",
		render.Table+"\tfor people", render.JSON+"\tthe full document, for programs")
}

func orList(v []string) string {
	switch len(v) {
	case 0:
		return "nothing"
	case 1:
		return v[0]
	}
	return strings.Join(v[:len(v)-1], ", ") + " or " + v[len(v)-1]
}

// fileFlags makes the named flags complete file names; with exts, only
// files with those extensions (and directories).
func fileFlags(cmd *cobra.Command, exts []string, names ...string) {
	for _, n := range names {
		_ = cmd.MarkFlagFilename(n, exts...)
	}
}

// dirFlags makes the named flags complete directory names.
func dirFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		_ = cmd.MarkFlagDirname(n)
	}
}

// noFileCompletion makes every flag that takes a value and completes
// nothing else (an id, an address, a duration) offer no file names,
// which is a shell's default for a flag value.
func noFileCompletion(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.NoOptDefVal != "" || f.Name == "help" {
			return // bool flags take no value
		}
		if _, ok := f.Annotations[cobra.BashCompFilenameExt]; ok {
			return
		}
		if _, ok := f.Annotations[cobra.BashCompSubdirsInDir]; ok {
			return
		}
		if _, ok := cmd.GetFlagCompletionFunc(f.Name); ok {
			return
		}
		_ = cmd.RegisterFlagCompletionFunc(f.Name, cobra.NoFileCompletions)
	})
}
