// Package admission compiles the policy stages and turns a facts document
// into a decision. It is pure: no I/O happens during evaluation.
package admission

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/admitd/admitd/facts"
)

// Engine is one compiled, prepared policy revision. It is immutable and
// safe for concurrent use; a reload builds a new Engine.
type Engine struct {
	source    string
	revision  string
	compiler  *ast.Compiler
	store     storage.Store
	caps      *ast.Capabilities
	stages    []string // the admit pipeline's order
	permanent map[string]bool
	ext       *extensions // enforcement, mask, site facts, explain (enforce.go)

	// pipelines by phase: admit always, promote when the policy set
	// defines admitd.pipeline.promote_stages.
	pipelines map[facts.Phase]*pipeline
}

// Revision is the hash of the policy files.
func (e *Engine) Revision() string { return e.revision }

// Source names where the policies came from.
func (e *Engine) Source() string { return e.source }

// Stages is the admit pipeline's order.
func (e *Engine) Stages() []string { return append([]string(nil), e.stages...) }

// allStages lists every stage of every pipeline once, admit's first.
func (e *Engine) allStages() []string {
	out := e.Stages()
	for _, s := range e.PromoteStages() {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// PromoteStages is the promote pipeline's order, nil when the policy set
// has none (staged candidates then cannot be promoted).
func (e *Engine) PromoteStages() []string {
	if p := e.pipelines[facts.PhasePromote]; p != nil {
		return append([]string(nil), p.stages...)
	}
	return nil
}

// Input is a facts document ready for evaluation: the validated document
// and its value as OPA evaluates it, converted once.
type Input struct {
	Doc      *facts.Document
	Raw      []byte
	value    ast.Value
	override *Override // set only by EvaluateOverride
}

// NewInput converts a decoded document once for all stages: its raw JSON
// is parsed straight into the value OPA evaluates (see jsonValue).
func NewInput(d *facts.Decoded) (*Input, error) {
	v, err := jsonValue(d.Raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", facts.ErrMalformed, err)
	}
	return &Input{Doc: d.Doc, Raw: d.Raw, value: v}, nil
}

// InputFromDocument encodes a collected document for evaluation.
func InputFromDocument(doc *facts.Document) (*Input, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return NewInput(&facts.Decoded{Doc: doc, Raw: raw})
}

// Evaluate runs the stages in pipeline order and stops at the first stage
// that does not pass. Any doubt is a deny.
func (e *Engine) Evaluate(ctx context.Context, in *Input) *Decision {
	start := time.Now()
	d := &Decision{
		DecisionID:     NewID(),
		Candidate:      in.Doc.Candidate,
		PolicyRevision: e.revision,
		Facts:          in.Raw,
		Timestamp:      start.UTC().Format(time.RFC3339Nano),
	}
	if in.Doc.Topology != nil {
		d.ConfigIndex = in.Doc.Topology.ConfigIndex
	}
	d.Phase = phaseOf(in.Doc)
	p := e.pipelines[d.Phase]
	if p == nil {
		d.Stages = []StageResult{stageError(StageResult{Name: "pipeline", Deny: []Violation{}, Warn: []Violation{}},
			fmt.Sprintf("the policy set defines no pipeline for phase %q (admitd.pipeline.promote_stages, remove_stages)", d.Phase))}
		d.StoppedAt = "pipeline"
		d.EvalMS = facts.Ms(time.Since(start))
		e.conclude(d, in, false)
		return d
	}
	passed := e.runStages(ctx, p, in, d)
	d.EvalMS = facts.Ms(time.Since(start))
	e.conclude(d, in, passed)
	return d
}

// phaseOf is the document's phase; none means admit, the stricter one.
func phaseOf(doc *facts.Document) facts.Phase {
	if doc.Phase == "" {
		return facts.PhaseAdmit
	}
	return doc.Phase
}

func (e *Engine) runStages(ctx context.Context, p *pipeline, in *Input, d *Decision) bool {
	// One evaluation decides every stage; nil means it failed, and each
	// stage is then evaluated alone, in order, to attribute the failure.
	all := p.evalAll(ctx, in)
	passed := true
	for i, name := range p.stages {
		if !passed {
			d.Stages = append(d.Stages, skipped(name))
			continue
		}
		var r StageResult
		if all != nil {
			r = all.stage(i, name, p.present[name])
		} else {
			r = p.evalStage(ctx, name, in)
		}
		r = in.override.lift(e.enforce(r))
		d.Stages = append(d.Stages, r)
		if r.Outcome != OutcomeAllow {
			passed = false
			d.StoppedAt = name
		}
	}
	return passed
}

func skipped(name string) StageResult {
	return StageResult{Name: name, Outcome: OutcomeSkipped, Deny: []Violation{}, Warn: []Violation{}}
}

// conclude sets the outcome and, only for a full pass with a proven
// configuration index, the grant.
func (e *Engine) conclude(d *Decision, in *Input, passed bool) {
	if !passed {
		d.Reason = denyReason(d)
		d.Permanent = e.isPermanent(d)
		return
	}
	if missing := uncollected(in.Doc, d.Phase); missing != "" {
		d.Reason = "facts: " + missing + " was not collected; no policy can allow on facts that are not there"
		return
	}
	topo := in.Doc.Topology
	d.Allowed = true
	d.Reason = "all stages allowed"
	d.grant = &Grant{sealed: true, decisionID: d.DecisionID, candidate: in.Doc.Candidate,
		configIndex: topo.ConfigIndex, phase: d.Phase, change: in.Doc.Change}
}

// uncollected names the first safety section of the phase that is missing
// or failed. The shipped stages deny such facts already; this check keeps
// an allow impossible even under a policy set that forgot to.
func uncollected(doc *facts.Document, phase facts.Phase) string {
	switch {
	case phase == facts.PhaseRemove && (doc.Topology == nil || !doc.Topology.Collected):
		return "topology"
	case phase == facts.PhaseRemove:
		return ""
	case doc.Reachability == nil || !doc.Reachability.Collected:
		return "reachability"
	case phase == facts.PhaseAdmit && (doc.InitState == nil || !doc.InitState.Collected):
		return "init_state"
	case phase == facts.PhasePromote && (doc.CatchUp == nil || !doc.CatchUp.Collected):
		return "catch_up"
	case doc.Topology == nil || !doc.Topology.Collected:
		return "topology"
	}
	return ""
}

func denyReason(d *Decision) string {
	s := d.StoppedStage()
	if s == nil {
		return "no stage allowed the candidate"
	}
	msgs := make([]string, 0, len(s.Deny))
	for _, v := range s.Deny {
		msgs = append(msgs, v.Code+": "+v.Message)
	}
	return s.Name + ": " + strings.Join(msgs, "; ")
}

// isPermanent says whether any deny is one the policies mark as unable to
// change by waiting (such as an initialized candidate).
func (e *Engine) isPermanent(d *Decision) bool {
	s := d.StoppedStage()
	return s != nil && slices.ContainsFunc(s.Deny, func(v Violation) bool { return e.permanent[v.Code] })
}

// evalStage evaluates one stage alone; every anomaly is a STAGE_ERROR.
// Its duration is its own (the result is named so the deferred timing
// reaches the caller).
func (p *pipeline) evalStage(ctx context.Context, name string, in *Input) (r StageResult) {
	start := time.Now()
	r = StageResult{Name: name, Deny: []Violation{}, Warn: []Violation{}}
	defer func() {
		ms := facts.Ms(time.Since(start))
		r.DurationMS = &ms
	}()
	if !p.present[name] {
		return stageError(r, fmt.Sprintf("stage %s has no package admitd.stages.%s", name, name))
	}
	rs, err := p.narrow[name].Eval(ctx, evalOptions(in)...)
	if err != nil {
		return stageError(r, fmt.Sprintf("stage %s: evaluation failed: %v", name, err))
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return stageError(r, fmt.Sprintf("stage %s: result undefined", name))
	}
	return judge(r, rs[0].Expressions[0].Value)
}

// judge reads allow, deny and warn from a stage's stageRefs value: three
// arrays holding the rule's value, or nothing when it is undefined.
func judge(r StageResult, v any) StageResult {
	refs, ok := v.([]any)
	if !ok || len(refs) != len(stageRules) {
		return stageError(r, fmt.Sprintf("stage %s: result is %T, not [allow, deny, warn]", r.Name, v))
	}
	var got [len(stageRules)]any
	for i, x := range refs {
		vals, ok := x.([]any)
		if !ok || len(vals) > 1 {
			return stageError(r, fmt.Sprintf("stage %s: %s has more than one value", r.Name, stageRules[i]))
		}
		if len(vals) == 1 {
			got[i] = vals[0]
		}
	}
	allow, ok := got[0].(bool)
	if !ok {
		return stageError(r, fmt.Sprintf("stage %s: allow is undefined or not a boolean", r.Name))
	}
	deny, err := violations(got[1])
	if err != nil {
		return stageError(r, fmt.Sprintf("stage %s: deny: %v", r.Name, err))
	}
	warn, err := violations(got[2])
	if err != nil {
		return stageError(r, fmt.Sprintf("stage %s: warn: %v", r.Name, err))
	}
	r.Deny, r.Warn = deny, warn
	switch {
	case allow && len(deny) == 0:
		r.Outcome = OutcomeAllow
	case len(deny) == 0:
		r.Outcome = OutcomeDeny
		r.Deny = []Violation{{Code: "NOT_ALLOWED", Message: fmt.Sprintf("stage %s did not allow the candidate and gave no reason", r.Name)}}
	default:
		r.Outcome = OutcomeDeny
	}
	return r
}

func stageError(r StageResult, msg string) StageResult {
	r.Outcome = OutcomeError
	r.Deny = []Violation{{Code: CodeStageError, Message: msg}}
	return r
}

// violations decodes a set of {code, message} objects; absent means none.
func violations(v any) ([]Violation, error) {
	out := []Violation{}
	if v == nil {
		return out, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("is %T, not a set", v)
	}
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %v is not an object", it)
		}
		code, ok1 := m["code"].(string)
		msg, ok2 := m["message"].(string)
		if !ok1 || !ok2 || code == "" {
			return nil, fmt.Errorf("entry %v lacks a string code and message", it)
		}
		out = append(out, Violation{Code: code, Message: msg})
	}
	sortViolations(out)
	return out, nil
}

// sortViolations orders violations by code, then message.
func sortViolations(vs []Violation) {
	slices.SortStableFunc(vs, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Message, b.Message))
	})
}

// NewID returns a random 128-bit hex id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
