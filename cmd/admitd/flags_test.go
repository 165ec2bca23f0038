package main

import (
	"github.com/spf13/cobra"

	"strings"
	"testing"
)

// A bad or missing flag is a usage error that names the flag, found
// before any request is made.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	fake, url := startFake(t)
	cand := []string{"--server", url, "--id", "n4", "--raft-addr", "127.0.0.1:7431", "--api-url", "http://127.0.0.1:7430"}
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(cand); i += 2 {
			if cand[i] != flag {
				out = append(out, cand[i], cand[i+1])
			}
		}
		return out
	}
	with := func(flag, value string) []string { return append(without(flag), flag, value) }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"join without --raft-addr", append([]string{"join"}, without("--raft-addr")...), "admitd: --raft-addr is required"},
		{"join without --id", append([]string{"join"}, without("--id")...), "admitd: --id is required"},
		{"join bad --id", append([]string{"join"}, with("--id", "n 4")...), "admitd: --id: "},
		{"join bad --raft-addr", append([]string{"join"}, with("--raft-addr", "127.0.0.1")...), "admitd: --raft-addr: "},
		{"join bad --raft-addr port", append([]string{"join"}, with("--raft-addr", "127.0.0.1:99999")...), "admitd: --raft-addr: "},
		{"join bad --api-url", append([]string{"join"}, with("--api-url", "127.0.0.1:7430")...), "admitd: --api-url: "},
		{"join bad --server", append([]string{"join"}, with("--server", "ftp://127.0.0.1:7400")...), "admitd: --server: "},
		{"join empty --server", append([]string{"join"}, with("--server", "")...), "admitd: --server is required"},
		{"join --timeout 0", append([]string{"join", "--timeout", "0s"}, cand...), "admitd: --timeout must be positive"},
		{"join --wait-timeout 0", append([]string{"join", "--wait-timeout", "0s"}, cand...), "admitd: --wait-timeout must be positive"},
		{"join -o yaml", append([]string{"join", "-o", "yaml"}, cand...), `invalid argument "yaml" for "-o, --output" flag: must be table or json`},
		{"remove without --id", []string{"remove", "--server", url}, "admitd: --id is required"},
		{"demote bad --id", []string{"demote", "--server", url, "--id", ".."}, "admitd: --id: "},
		{"clear-tombstone without --id", []string{"clear-tombstone", "--server", url}, "admitd: --id is required"},
		{"remove --override without --reason", []string{"remove", "--server", url, "--id", "n2", "--override", "QUORUM_UNSAFE"}, "admitd: --override needs --reason"},
		{"remove --reason without --override", []string{"remove", "--server", url, "--id", "n2", "--reason", "x"}, "admitd: --reason needs --override"},
		{"remove --override of a code never lifted", []string{"remove", "--server", url, "--id", "n2", "--override", "STAGE_ERROR", "--reason", "x"}, "admitd: --override: "},
		{"remove --tls-key without --tls-cert", []string{"remove", "--server", url, "--id", "n2", "--tls-key", "k.pem"}, "admitd: --tls-cert and --tls-key go together"},
		{"status --wait-voters -1", []string{"status", "--server", url, "--wait-voters", "-1"}, "admitd: --wait-voters must be 0"},
		{"status --timeout alone", []string{"status", "--server", url, "--timeout", "5s"}, "admitd: --timeout bounds --wait-voters"},
		{"status --timeout 0", []string{"status", "--server", url, "--wait-voters", "1", "--timeout", "0s"}, "admitd: --timeout must be positive"},
		{"status -o yaml", []string{"status", "--server", url, "-o", "yaml"}, "--output"},
		{"eval -o yaml", []string{"eval", "--facts", "-", "-o", "yaml"}, "--output"},
		{"serve bad --join", serveArgs(t, "--join", "127.0.0.1:7400"), "admitd: --join: "},
		{"serve bad --id", serveArgs(t, "--id", "a b"), "admitd: --id: "},
		{"serve bad --api-url", serveArgs(t, "--api-url", "ftp://x"), "admitd: --api-url: "},
		{"serve bad --raft-addr", serveArgs(t, "--raft-addr", "7401"), "admitd: --raft-addr: "},
		{"serve bad --mode", serveArgs(t, "--mode", "audit"), `for "--mode" flag: must be enforce or dry-run`},
		{"serve bad --log-level", serveArgs(t, "--log-level", "loud"), `for "--log-level" flag: must be trace, debug, info, warn or error`},
		{"serve --max-staged 0", serveArgs(t, "--max-staged", "0"), "admitd: --max-staged must be at least 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, "", c.args...)
			if code != exitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, errOut, exitUsage, c.want)
			}
			if strings.Contains(errOut, "candidate.") {
				t.Errorf("names a JSON field: %s", errOut)
			}
		})
	}
	if seen, _ := fake.requests(); len(seen) != 0 {
		t.Fatalf("requests made despite usage errors: %v", seen)
	}
}

// A candidate without --api-url (one that runs nothing but raft) is asked for.
func TestJoinWithoutAPIURL(t *testing.T) {
	url := answering(t, 200, `{"decision_id": "d1", "allowed": true, "enforced": true, "candidate": {"id": "n4"}, "applied": {"suffrage": "voter", "index": 9}}`)
	code, out, errOut := runCmd(t, "", "join", "--server", url, "--id", "n4", "--raft-addr", "127.0.0.1:7431")
	if code != exitOK || !strings.Contains(out, "ALLOWED") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// __complete answers a flag's values the way a shell asks for them.
func TestFlagCompletion(t *testing.T) {
	cases := []struct {
		args []string
		want []string // lines of the answer, the directive last
	}{
		{[]string{"status", "-o", ""}, []string{"table\tfor people", "json\tthe full document, for programs", ":4"}},
		{[]string{"join", "--output", "j"}, []string{"json\tthe full document, for programs", ":4"}},
		{[]string{"remove", "-o", ""}, []string{"table\tfor people", "json\tthe full document, for programs", ":4"}},
		{[]string{"eval", "-o", ""}, []string{"table\tfor people", "json\tthe full document, for programs", ":4"}},
		{[]string{"serve", "--mode", ""}, []string{"enforce\tdecide and change membership", "dry-run\tdecide and log, never change membership", ":4"}},
		{[]string{"serve", "--log-level", ""}, []string{"trace", "debug", "info", "warn", "error", ":4"}},
		// Files: any file (the shell's default), some extensions, directories.
		{[]string{"status", "--token-file", ""}, []string{":0"}},
		{[]string{"join", "--tls-ca", ""}, []string{":0"}},
		{[]string{"serve", "--tls-cert", ""}, []string{":0"}},
		{[]string{"serve", "--config", ""}, []string{"yaml", "yml", ":8"}},
		{[]string{"serve", "--site-facts", ""}, []string{"json", ":8"}},
		{[]string{"eval", "--facts", ""}, []string{"json", ":8"}},
		{[]string{"serve", "--policies", ""}, []string{":16"}},
		{[]string{"serve", "--data-dir", ""}, []string{":16"}},
		{[]string{"eval", "--policies", ""}, []string{":16"}},
		// Values that are no files: nothing offered, no file names either.
		{[]string{"serve", "--id", ""}, []string{":4"}},
		{[]string{"join", "--raft-addr", ""}, []string{":4"}},
		{[]string{"status", "--server", ""}, []string{":4"}},
		{[]string{"status", "--wait-voters", ""}, []string{":4"}},
		{[]string{"serve", "--join-timeout", ""}, []string{":4"}},
	}
	for _, c := range cases {
		code, out, errOut := runCmd(t, "", append([]string{"__complete"}, c.args...)...)
		if got := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("__complete %v: exit %d, got %q, want %q (%s)", c.args, code, got, c.want, errOut)
		}
	}
}

// Each command has a description with its exit statuses and examples.
// Every command of the tree (cobra's help and completion aside) says what
// it does, how it exits, and shows an example.
func TestEveryCommandDescribed(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Name() == "help" || c.Name() == "completion" || (c.HasParent() && c.Parent().Name() == "completion") {
			return
		}
		inherited := "" // a group's subcommands may share its exit statuses
		if c.HasParent() {
			inherited = c.Parent().Long
		}
		if c.Long == "" || !strings.Contains(c.Long+inherited, "Exit status") {
			t.Errorf("%s: no long description with exit statuses", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%s: no example", c.CommandPath())
		}
	}
	root := newRoot()
	root.InitDefaultHelpCmd()
	walk(root)
}

func TestCommandsDescribed(t *testing.T) {
	root := newRoot()
	for _, name := range append([]string{"serve", "eval"}, clientCommands...) {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("no command %s: %v", name, err)
		}
		if !strings.Contains(cmd.Long, "Exit status: 0") || !strings.Contains(cmd.Long, "2 usage") {
			t.Errorf("%s: Long has no exit statuses:\n%s", name, cmd.Long)
		}
		if !strings.Contains(cmd.Example, "admitd "+name) {
			t.Errorf("%s: no example", name)
		}
		for _, line := range strings.Split(cmd.Example, "\n") {
			if strings.Contains(line, "://") && !strings.Contains(line, "127.0.0.1") {
				t.Errorf("%s: example names a server other than 127.0.0.1: %s", name, line)
			}
		}
		_, out, _ := runCmd(t, "", name, "--help")
		if !strings.Contains(out, "Exit status") || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help:\n%s", name, out)
		}
	}
}
