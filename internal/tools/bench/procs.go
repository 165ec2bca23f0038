package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/admitd/admitd/internal/tools/proc"
)

// servers starts the contenders a run measures; its Group stops them all
// however the run ends (including on SIGINT or SIGTERM).
type servers struct {
	*proc.Group
	admitdEnv []string // added to the admitd processes' environment
}

// admitd starts `admitd serve` on free loopback ports with the given
// policy directory and extra flags (--bootstrap, or none for a candidate
// that waits uninitialized).
func (s *servers) admitd(bin, name, policies string, extra ...string) (*proc.Process, error) {
	args := []string{"--policies", policies,
		"--log-level", "error",
		// Voters directly: the cluster forms without waiting out each
		// member's stabilisation, and the numbers measure the gate itself.
		"--staged=false",
	}
	return s.Admitd(bin, name, s.admitdEnv, append(args, extra...)...)
}

// opa starts the stock `opa run --server` on the same policy files (tests
// and capabilities.json left out, as admitd leaves them out at runtime).
func (s *servers) opa(bin, name, policies string) (*proc.Process, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := s.Start(name, bin, nil, "run", "--server", "--addr", addr,
		"--log-level", "error", "--log-level-request", "error", "--skip-version-check",
		"--ignore", "*_test.rego", "--ignore", "capabilities.json", policies)
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + addr
	return p, nil
}

// runCmd runs a command to completion, streaming nothing, and returns its
// standard output; a failure carries the output's tail.
func runCmd(ctx context.Context, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, proc.Tail(string(out), 3000))
		}
		return "", err
	}
	return string(out), nil
}
