package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
)

func TestEvalExplain(t *testing.T) {
	code, out, _ := runCmd(t, "", "eval", "--facts", scenarios+"deny-already-initialized/facts.json")
	if code != exitDenied || strings.Contains(out, "explain") {
		t.Fatalf("explained without --explain (exit %d):\n%s", code, out)
	}
	code, out, _ = runCmd(t, "", "eval", "--explain", "--facts", scenarios+"deny-already-initialized/facts.json")
	for _, want := range []string{"explain init_state:", "fired  deny (Already initialized)  init_state.rego:", "stopped at stage init_state"} {
		if code != exitDenied || !strings.Contains(out, want) {
			t.Fatalf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	code, out, _ = runCmd(t, "", "eval", "--explain", "-o", "json", "--facts", scenarios+"allow-2-to-3/facts.json")
	var d admission.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != exitOK || len(d.Stages[0].Explain) == 0 {
		t.Fatalf("json with explain: exit %d %v\n%s", code, err, out)
	}
}

func TestServeOpsFlagsUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"bad mode":             serveArgs(t, "--mode", "audit"),
		"mask outside input":   serveArgs(t, "--decision-log", "-", "--decision-log-mask", "/labels/id"),
		"mask without the log": serveArgs(t, "--decision-log-mask", "/input/site/token"),
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, errOut := runCmd(t, "", args...); code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, errOut)
			}
		})
	}
}
