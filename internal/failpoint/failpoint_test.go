package failpoint

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFailpointParse(t *testing.T) {
	points, errs := parse(" a/b = exit(137) ; c=sleep(20);d=2*off->panic ;e=1*sleep(0)->1*exit(3);")
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := map[string][]term{
		"a/b": {{0, action{kindExit, 137}}},
		"c":   {{0, action{kindSleep, 20}}},
		"d":   {{2, action{kindOff, 0}}, {0, action{kindPanic, 0}}},
		"e":   {{1, action{kindSleep, 0}}, {1, action{kindExit, 3}}},
	}
	if len(points) != len(want) {
		t.Fatalf("got %d points, want %d", len(points), len(want))
	}
	for name, terms := range want {
		if p := points[name]; p == nil || !slices.Equal(p.terms, terms) {
			t.Errorf("%s: got %+v, want %+v", name, p, terms)
		}
	}
}

func TestFailpointParseRejectsMalformedEntries(t *testing.T) {
	bad := []string{
		"noequals", "=exit(1)", "x=", "x=exit", "x=exit(", "x=exit(-1)", "x=exit(256)",
		"x=sleep(1.5)", "x=sleep()", "x=halt(1)", "x=0*exit(1)", "x=y*exit(1)", "x=exit(1)->",
		"x=panic(1)",
	}
	for _, entry := range bad {
		points, errs := parse(entry + ";ok=panic")
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), entry) {
			t.Errorf("%q: errors %v, want one naming the entry", entry, errs)
		}
		if len(points) != 1 || points["ok"] == nil {
			t.Errorf("%q: the valid entry was not kept: %v", entry, points)
		}
	}
}

func TestFailpointMalformedReportedOnceAndIgnored(t *testing.T) {
	var out bytes.Buffer
	r := load("x=boom;y=sleep(1)", &out)
	for range 3 {
		r.inject("x")
		r.inject("y")
	}
	got := out.String()
	if n := strings.Count(got, "failpoint: ignoring"); n != 1 || !strings.Contains(got, `"x=boom"`) {
		t.Errorf("want one report naming x=boom, got:\n%s", got)
	}
	if n := strings.Count(got, "failpoint y: sleep(1)"); n != 3 {
		t.Errorf("y announced %d times, want 3:\n%s", n, got)
	}
}

func TestFailpointChainCounts(t *testing.T) {
	var out bytes.Buffer
	r := load("p=2*off->1*sleep(0)->1*exit(7)", &out)
	var codes []int
	r.exit = func(c int) { codes = append(codes, c) }
	for range 6 {
		r.inject("p")
	}
	if !slices.Equal(codes, []int{7}) {
		t.Errorf("exit calls %v, want [7]", codes)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if want := []string{"failpoint p: sleep(0)", "failpoint p: exit(7)"}; !slices.Equal(lines, want) {
		t.Errorf("announcements %q, want %q", lines, want)
	}
}

func TestFailpointSleep(t *testing.T) {
	r := load("s=sleep(150)", &bytes.Buffer{})
	start := time.Now()
	r.inject("s")
	if took := time.Since(start); took < 150*time.Millisecond || took > 5*time.Second {
		t.Errorf("slept %s, want about 150ms", took)
	}
	start = time.Now()
	r.inject("other")
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("an unconfigured point took %s", took)
	}
}

func TestFailpointPanic(t *testing.T) {
	r := load("p=panic", &bytes.Buffer{})
	defer func() {
		if v := recover(); v != "failpoint p" {
			t.Errorf("recovered %v, want the failpoint's panic", v)
		}
	}()
	r.inject("p")
	t.Error("inject returned")
}

// The package never reads the environment: with EnvVar set and no Enable,
// Inject does nothing; Enable("") turns the points off again.
func TestFailpointOffUntilEnabled(t *testing.T) {
	t.Setenv(EnvVar, "admit/before-add=exit(3)")
	Inject("admit/before-add") // must do nothing: nobody enabled it
	if global.Load() != nil {
		t.Fatal("a registry was loaded from the environment")
	}
	var out bytes.Buffer
	Enable("x=sleep(0)", &out, func(int) { t.Error("exit called") })
	Inject("x")
	if !strings.Contains(out.String(), "failpoint x") {
		t.Errorf("an enabled point was not announced: %q", out.String())
	}
	Enable("", nil, nil)
	if global.Load() != nil {
		t.Error("Enable(\"\") left the points on")
	}
}

// childEnv marks the re-executed test binary that crashes on purpose.
const childEnv = "FAILPOINT_TEST_CHILD"

// TestFailpointExitCrashesTheProcess re-runs this test binary with the env
// var set: Inject must end the process with the code, right after
// announcing it.
func TestFailpointExitCrashesTheProcess(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		Enable(os.Getenv(EnvVar), os.Stderr, os.Exit) // as admitd serve does
		Inject("crash/here")
		os.Exit(0) // not reached when the failpoint works
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailpointExitCrashesTheProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", EnvVar+"=crash/here=exit(42);bad")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("child: %v, want exit 42\n%s", err, stderr.String())
	}
	for _, want := range []string{"failpoint crash/here: exit(42)", `failpoint: ignoring "bad"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("child stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
