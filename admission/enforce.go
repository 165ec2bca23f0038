package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/open-policy-agent/opa/v1/rego"
)

// Enforcement actions of a stage, as Gatekeeper's enforcementAction: a
// "deny" stage ends the pipeline when it does not pass; a "warn" stage has
// its denies reported as warnings and the pipeline goes on.
const (
	EnforcementDeny = "deny"
	EnforcementWarn = "warn"
)

// EnforcementRef is where a policy set names the enforcement of its site
// stages: an object from stage name to "deny" or "warn". Stages it does not
// name are "deny".
const EnforcementRef = "data.admitd.pipeline.enforcement"

// MaskRef is the rule, as OPA's decision-log masking, that names the JSON
// pointers to erase from a decision-log event before it is written.
const MaskRef = "data.system.log.mask"

// extensions is what a policy set declares beyond its stages. It is set
// once by Load (and LoadWith, before the engine is shared) and read-only
// afterwards, except for the lazily prepared explain queries.
type extensions struct {
	enforcement map[string]string // stage -> EnforcementWarn; deny stages are absent
	notes       []string          // load-time warnings worth logging
	mask        *rego.PreparedEvalQuery
	site        map[string]any // operator-supplied facts merged into input.site
	tests       *TestReport    // set when LoadWith ran the set's tests

	explainOnce sync.Once
	explainQ    map[string]rego.PreparedEvalQuery
	explainErr  error
}

// extend reads the enforcement map and prepares the mask rule. It is called
// by Load after the stages are prepared.
func (e *Engine) extend(ctx context.Context) error {
	x := &extensions{enforcement: map[string]string{}}
	if err := e.readEnforcement(ctx, x); err != nil {
		return fmt.Errorf("admitd.pipeline.enforcement: %v", err)
	}
	if e.hasPackage("system.log") {
		pq, err := e.newQuery(MaskRef).PrepareForEval(ctx)
		if err != nil {
			return fmt.Errorf("system.log.mask: %v", err)
		}
		x.mask = &pq
	}
	e.ext = x
	return nil
}

func (e *Engine) readEnforcement(ctx context.Context, x *extensions) error {
	rs, err := e.newQuery(EnforcementRef).Eval(ctx)
	if err != nil {
		return err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil // undefined: every stage is enforced
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return fmt.Errorf("want an object of stage name to \"deny\" or \"warn\", got %T", rs[0].Expressions[0].Value)
	}
	known := map[string]bool{}
	for _, s := range e.allStages() {
		known[s] = true
	}
	safety := map[string]bool{}
	for _, s := range append(slices.Clone(SafetyStages), PromoteSafetyStages...) {
		safety[s] = true
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		action, ok := m[name].(string)
		if !ok || (action != EnforcementDeny && action != EnforcementWarn) {
			return fmt.Errorf("stage %q: want \"deny\" or \"warn\", got %v", name, m[name])
		}
		if !known[name] {
			return fmt.Errorf("stage %q is not in admitd.pipeline.stages", name)
		}
		if action != EnforcementWarn {
			continue
		}
		if safety[name] {
			x.notes = append(x.notes, fmt.Sprintf("admitd.pipeline.enforcement asks for %q on safety stage %s; safety stages are always enforced, the entry is ignored", action, name))
			continue
		}
		x.enforcement[name] = EnforcementWarn
	}
	return nil
}

// enforce applies a stage's enforcement action to its result: a warn stage
// that denies is reported as allowed with its denies under warn, codes
// kept. A stage that could not be evaluated (outcome error) stays a deny
// even in warn mode: admitd fails closed.
func (e *Engine) enforce(r StageResult) StageResult {
	if e.ext == nil || e.ext.enforcement[r.Name] != EnforcementWarn {
		return r
	}
	r.Enforcement = EnforcementWarn
	if r.Outcome != OutcomeDeny {
		return r
	}
	warn := make([]Violation, 0, len(r.Warn)+len(r.Deny))
	warn = append(warn, r.Warn...)
	warn = append(warn, r.Deny...)
	sortViolations(warn)
	r.Warn, r.Deny, r.Outcome = warn, []Violation{}, OutcomeAllow
	return r
}

// Enforcement returns the stages in warn mode, as declared and accepted at
// load; every other stage is enforced.
func (e *Engine) Enforcement() map[string]string {
	out := map[string]string{}
	if e.ext != nil {
		for k, v := range e.ext.enforcement {
			out[k] = v
		}
	}
	return out
}

// Notes are load-time warnings about the set (such as a warn entry for a
// safety stage, which is ignored). The daemon logs them.
func (e *Engine) Notes() []string {
	if e.ext == nil {
		return nil
	}
	return append([]string(nil), e.ext.notes...)
}

// HasMask says whether the set defines data.system.log.mask.
func (e *Engine) HasMask() bool { return e.ext != nil && e.ext.mask != nil }

// MaskOp is one masking action named by data.system.log.mask: "remove"
// erases the value at Path, "upsert" replaces or creates it with Value.
type MaskOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Mask evaluates data.system.log.mask with the decision-log event as input,
// as OPA does: the rule is a set of JSON pointers ("/input/site/token") to
// erase, or of objects {"op": "remove"|"upsert", "path": ..., "value": ...}.
// A set without the rule masks nothing.
func (e *Engine) Mask(ctx context.Context, event any) ([]MaskOp, error) {
	if !e.HasMask() {
		return nil, nil
	}
	rs, err := e.ext.mask.Eval(ctx, rego.EvalInput(event))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	items, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("system.log.mask is %T, not a set", rs[0].Expressions[0].Value)
	}
	ops := make([]MaskOp, 0, len(items))
	for _, it := range items {
		switch v := it.(type) {
		case string:
			ops = append(ops, MaskOp{Op: "remove", Path: v})
		case map[string]any:
			op, _ := v["op"].(string)
			path, _ := v["path"].(string)
			if path == "" || (op != "remove" && op != "upsert") {
				return nil, fmt.Errorf("system.log.mask entry %v: want a pointer string or {op: remove|upsert, path, value}", v)
			}
			ops = append(ops, MaskOp{Op: op, Path: path, Value: v["value"]})
		default:
			return nil, fmt.Errorf("system.log.mask entry %v is neither a string nor an object", it)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Path < ops[j].Path })
	return ops, nil
}

// Options are what LoadWith adds to Load.
type Options struct {
	// RunTests runs the set's *_test.rego in-process under the set's
	// capabilities; any failure or error refuses the set.
	RunTests bool
	// AllowUntested accepts, with RunTests, a set that holds no test at
	// all; without it such a set is refused (ErrNoTests), since nothing
	// has shown that it denies what it must.
	AllowUntested bool
	// Site facts are given to the daemon's collected facts documents as
	// input.site; admitd never interprets them.
	Site map[string]any
}

// ErrTestsFailed wraps a load refused because the set's own tests failed.
var ErrTestsFailed = errors.New("policy tests failed")

// ErrNoTests wraps a load refused because the set has no tests.
var ErrNoTests = errors.New("the policy set has no tests")

// LoadWith loads a set like Load, then optionally runs its tests, and
// attaches site facts, all before the engine is returned and shared.
func LoadWith(ctx context.Context, src Source, opts Options) (*Engine, error) {
	src, _, err := snapshot(src) // the tests run on the very files loaded
	if err != nil {
		return nil, err
	}
	e, err := Load(ctx, src)
	if err != nil {
		return nil, err
	}
	if opts.RunTests {
		rep, err := RunTests(ctx, src)
		if err != nil {
			return nil, err
		}
		if rep.Passed == 0 && !opts.AllowUntested {
			return nil, fmt.Errorf("%w: %w: %s holds no *_test.rego test; add tests, or accept an untested set explicitly (--allow-untested-policies)",
				ErrLoad, ErrNoTests, src.Name)
		}
		e.ext.tests = &rep
	}
	e.ext.site = opts.Site
	return e, nil
}

// Tests is the report of the tests LoadWith ran, or nil.
func (e *Engine) Tests() *TestReport {
	if e.ext == nil {
		return nil
	}
	return e.ext.tests
}

// SiteFacts are the operator-supplied site facts attached at load, or nil.
// The map is shared and must not be modified.
func (e *Engine) SiteFacts() map[string]any {
	if e.ext == nil {
		return nil
	}
	return e.ext.site
}
