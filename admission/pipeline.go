package admission

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/admitd/admitd/facts"
)

// stageRules are the only rules of a stage package a decision reads.
// Querying them, rather than the package value, leaves the helper rules
// that only feed messages (candidate_json, unhealthy_summary, ...) and the
// rules no deny or allow depends on unevaluated.
var stageRules = [...]string{"allow", "deny", "warn"}

// stageRefs is the query term for one stage: [[allow], [deny], [warn]],
// each inner array empty when the rule is undefined, so a missing warn (or
// a missing package) never makes the whole query undefined. Stage names
// are var-compatible (checkPipeline), so %q quotes them as Rego would.
func stageRefs(name string) string {
	parts := make([]string, len(stageRules))
	for i, rule := range stageRules {
		parts[i] = fmt.Sprintf("[x | x := data.admitd.stages[%q][%q]]", name, rule)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// combinedRefs is stageRefs for the combined query, where allow is read
// directly: a stage without allow makes the whole query undefined, and
// the stage-by-stage fallback then reports it. deny and warn keep their
// comprehension, as a stage may well define neither.
func combinedRefs(name string) string {
	return fmt.Sprintf("[[data.admitd.stages[%q].allow], [x | x := data.admitd.stages[%q].deny], [x | x := data.admitd.stages[%q].warn]]", name, name, name)
}

// pipeline is one phase's stages, prepared. Evaluation proper reads only
// each stage's allow, deny and warn: all stages in one query, and one
// query per stage to fall back on when the combined evaluation fails.
type pipeline struct {
	stages  []string
	present map[string]bool
	all     rego.PreparedEvalQuery
	narrow  map[string]rego.PreparedEvalQuery
}

// preparePipeline prepares the combined query (every stage at once, in
// pipeline order) and one query per stage, once per policy revision.
func (e *Engine) preparePipeline(ctx context.Context, stages []string) (*pipeline, error) {
	p := &pipeline{stages: stages, present: map[string]bool{}, narrow: map[string]rego.PreparedEvalQuery{}}
	terms := make([]string, len(stages))
	for i, s := range stages {
		p.present[s] = e.hasPackage("admitd.stages." + s)
		terms[i] = combinedRefs(s)
		pq, err := e.newQuery(stageRefs(s)).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %v", s, err)
		}
		p.narrow[s] = pq
	}
	pq, err := e.newQuery("[" + strings.Join(terms, ", ") + "]").PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("stages: %v", err)
	}
	p.all = pq
	return p, nil
}

// evalOptions evaluate on the input as converted once, and with OPA's
// metrics off: a decision times itself, and the default would allocate a
// fresh metrics map for every evaluation.
func evalOptions(in *Input) []rego.EvalOption {
	return []rego.EvalOption{rego.EvalParsedInput(in.value), rego.EvalMetrics(metrics.NoOp())}
}

// combined is the outcome of evaluating every stage in one query.
type combined struct {
	stages []any   // per stage, in pipeline order: [[allow], [deny], [warn]]
	ms     float64 // how long that one evaluation took
}

// evalAll evaluates every stage in one query. Evaluation is pure, so
// evaluating a later stage early changes nothing but the time taken, and
// runStages still reads the results in pipeline order and stops at the
// first stage that does not pass. It returns nil when the query errs or
// is undefined (say a later stage fails with a builtin error): runStages
// then evaluates stage by stage, so an error is attributed to its stage and
// a stage after the first deny is never evaluated at all.
func (p *pipeline) evalAll(ctx context.Context, in *Input) *combined {
	start := time.Now()
	rs, err := p.all.Eval(ctx, evalOptions(in)...)
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil
	}
	stages, ok := rs[0].Expressions[0].Value.([]any)
	if !ok || len(stages) != len(p.stages) {
		return nil
	}
	return &combined{stages: stages, ms: facts.Ms(time.Since(start))}
}

// stage judges stage i from the combined result. Its duration is that of
// the one evaluation shared by all stages, marked as such so nobody adds
// the stages' durations up.
func (c *combined) stage(i int, name string, present bool) StageResult {
	r := StageResult{Name: name, Deny: []Violation{}, Warn: []Violation{}}
	if !present {
		r = stageError(r, fmt.Sprintf("stage %s has no package admitd.stages.%s", name, name))
	} else {
		r = judge(r, c.stages[i])
	}
	ms := c.ms
	r.DurationMS = &ms
	r.DurationShared = true
	return r
}
