// Package failpoint injects faults at named points of the daemon, for the
// fault tests. It is off unless the daemon enables it (Enable), which
// `admitd serve` does when ADMITD_FAILPOINTS is set, e.g.
//
//	ADMITD_FAILPOINTS='admit/before-add=2*off->exit(137);admit/after-add=sleep(2000)'
//
// Each entry is name=terms. Terms are chained with "->" (gofail's syntax):
// "N*action" runs N times and then hands over to the next term; a term
// without a count runs from then on. Once the last counted term is used up
// the point is off. Actions: off, sleep(ms), exit(code) (os.Exit: a crash
// at an exact point), panic. A panic inside an HTTP handler is recovered
// by net/http, which drops the connection.
//
// A malformed entry is reported on stderr once and ignored, so the other
// entries still apply. Every action is announced on stderr first.
//
// Points: admit/before-add (an add is decided, AddVoter or, staged,
// AddNonvoter not yet called), admit/after-add (it returned, nobody
// answered yet), and
// raftglue/before-metadata (a membership change committed; the member's
// metadata was recorded before it, a promotion's end of stage is not yet).
package failpoint

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EnvVar names the environment variable that holds the failpoint spec.
const EnvVar = "ADMITD_FAILPOINTS"

// Inject runs the action configured for name, if any. Until Enable it
// costs one atomic load: a library that embeds the gate never enables it.
func Inject(name string) {
	if r := global.Load(); r != nil {
		r.inject(name)
	}
}

var global atomic.Pointer[registry]

// Enable turns the failpoints of spec on for this process: triggers are
// announced on out, and exit(code) calls exit. Only the daemon calls it,
// with the value of EnvVar and os.Exit; an empty spec turns them off.
func Enable(spec string, out io.Writer, exit func(int)) {
	if strings.TrimSpace(spec) == "" {
		global.Store(nil)
		return
	}
	r := load(spec, out)
	r.exit = exit
	global.Store(r)
}

// registry holds the parsed failpoints of one process.
type registry struct {
	mu     sync.Mutex
	points map[string]*point
	out    io.Writer // where triggers are announced
	exit   func(int) // the daemon's os.Exit; replaced in tests
}

// load parses spec, reporting malformed entries on out.
func load(spec string, out io.Writer) *registry {
	points, errs := parse(spec)
	for _, err := range errs {
		fmt.Fprintf(out, "failpoint: ignoring %v\n", err)
	}
	return &registry{points: points, out: out, exit: func(int) {}}
}

func (r *registry) inject(name string) {
	r.mu.Lock()
	p := r.points[name]
	var a action
	if p != nil {
		a = p.next()
	}
	r.mu.Unlock()
	if a.kind == kindOff {
		return
	}
	// Announced first, so a test can see the process reached the point.
	fmt.Fprintf(r.out, "failpoint %s: %s\n", name, a)
	switch a.kind {
	case kindSleep:
		time.Sleep(time.Duration(a.arg) * time.Millisecond)
	case kindExit:
		r.exit(a.arg)
	case kindPanic:
		panic("failpoint " + name)
	}
}

type kind int

const (
	kindOff kind = iota
	kindSleep
	kindExit
	kindPanic
)

type action struct {
	kind kind
	arg  int
}

func (a action) String() string {
	switch a.kind {
	case kindSleep:
		return fmt.Sprintf("sleep(%d)", a.arg)
	case kindExit:
		return fmt.Sprintf("exit(%d)", a.arg)
	case kindPanic:
		return "panic"
	}
	return "off"
}

// term is one link of a chain; count 0 means "from then on".
type term struct {
	count  int
	action action
}

// point is one failpoint's chain and how far along it is.
type point struct {
	terms []term
	used  int // runs of terms[0]
}

// next returns the action for this hit and advances the chain.
func (p *point) next() action {
	for len(p.terms) > 0 {
		t := p.terms[0]
		if t.count == 0 {
			return t.action
		}
		if p.used < t.count {
			p.used++
			return t.action
		}
		p.terms, p.used = p.terms[1:], 0
	}
	return action{}
}

// parse reads "name=terms;name=terms"; entries that do not parse are
// returned as errors and left out.
func parse(spec string) (map[string]*point, []error) {
	points := map[string]*point{}
	var errs []error
	for _, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, terms, err := parseEntry(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", entry, err))
			continue
		}
		points[name] = &point{terms: terms}
	}
	return points, errs
}

func parseEntry(entry string) (string, []term, error) {
	name, chain, ok := strings.Cut(entry, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", nil, errors.New("want name=action")
	}
	var terms []term
	for _, s := range strings.Split(chain, "->") {
		t, err := parseTerm(strings.TrimSpace(s))
		if err != nil {
			return "", nil, err
		}
		terms = append(terms, t)
	}
	return name, terms, nil
}

// parseTerm reads "[N*]action".
func parseTerm(s string) (term, error) {
	var t term
	if n, rest, ok := strings.Cut(s, "*"); ok {
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || count < 1 {
			return t, fmt.Errorf("count %q must be a positive integer", n)
		}
		t.count, s = count, strings.TrimSpace(rest)
	}
	a, err := parseAction(s)
	t.action = a
	return t, err
}

func parseAction(s string) (action, error) {
	switch s {
	case "off":
		return action{kind: kindOff}, nil
	case "panic":
		return action{kind: kindPanic}, nil
	}
	fn, arg, ok := strings.Cut(s, "(")
	if !ok || !strings.HasSuffix(arg, ")") {
		return action{}, fmt.Errorf("unknown action %q (want off, sleep(ms), exit(code) or panic)", s)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(arg, ")"))
	if err != nil || n < 0 {
		return action{}, fmt.Errorf("action %q needs a non-negative integer argument", s)
	}
	switch fn {
	case "sleep":
		return action{kind: kindSleep, arg: n}, nil
	case "exit":
		if n > 255 {
			return action{}, fmt.Errorf("exit code %d is out of range 0-255", n)
		}
		return action{kind: kindExit, arg: n}, nil
	}
	return action{}, fmt.Errorf("unknown action %q (want off, sleep(ms), exit(code) or panic)", s)
}
