package main

import (
	"bytes"
	"strings"
	"testing"
)

// Commands that do not exist are usage errors (exit 2) with a message,
// under the root and under a command group alike; real ones still run.
func TestUnknownCommandIsUsageError(t *testing.T) {
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bogus"}, exitUsage, `unknown command "bogus" for "admitd"`},
		{[]string{"completion", "fish2"}, exitUsage, `unknown command "fish2" for "admitd completion"`},
		{[]string{"status", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"completion", "bash"}, exitOK, ""},
		{[]string{"help"}, exitOK, ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(""), &out, &errb)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errb.String())
		}
		if !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: stderr %q lacks %q", c.args, errb.String(), c.msg)
		}
		if c.code == exitOK && out.Len() == 0 {
			t.Errorf("%v: printed nothing", c.args)
		}
	}
}
