package admission

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explain fills, for every stage d evaluated (not skipped), the rules that
// fired and the rules that were evaluated and failed, with their METADATA
// title and file:line, from a filtered trace of the stage's evaluation
// (rule indexing and early exit off, so every candidate rule is tried).
// Listed are allow, deny and warn, and every rule with a METADATA title;
// untitled helpers are left out.
// Tracing is costly, so it runs only when asked, after the decision: the
// verdict is never taken from a traced evaluation.
func (e *Engine) Explain(ctx context.Context, in *Input, d *Decision) {
	qs, err := e.explainQueries(ctx)
	for i := range d.Stages {
		s := &d.Stages[i]
		if s.Outcome == OutcomeSkipped {
			continue
		}
		if err != nil {
			s.Explain = []string{"explain unavailable: " + err.Error()}
			continue
		}
		pq, ok := qs[s.Name]
		if !ok {
			s.Explain = []string{fmt.Sprintf("no package admitd.stages.%s to trace", s.Name)}
			continue
		}
		s.Explain = e.explainStage(ctx, pq, s.Name, in)
	}
}

// EvaluateExplain is Evaluate followed by Explain.
func (e *Engine) EvaluateExplain(ctx context.Context, in *Input) *Decision {
	d := e.Evaluate(ctx, in)
	e.Explain(ctx, in, d)
	return d
}

func (e *Engine) explainQueries(ctx context.Context) (map[string]rego.PreparedEvalQuery, error) {
	if e.ext == nil {
		return nil, fmt.Errorf("engine not loaded")
	}
	x := e.ext
	x.explainOnce.Do(func() {
		x.explainQ = map[string]rego.PreparedEvalQuery{}
		for _, s := range e.allStages() {
			if !e.hasPackage("admitd.stages." + s) {
				continue
			}
			pq, err := e.newQuery("data.admitd.stages." + s).PrepareForEval(ctx)
			if err != nil {
				x.explainErr = err
				return
			}
			x.explainQ[s] = pq
		}
	})
	return x.explainQ, x.explainErr
}

// ruleTrace is what the trace says about one rule definition.
type ruleTrace struct {
	rule    *ast.Rule
	entered bool
	exited  bool
}

func (e *Engine) explainStage(ctx context.Context, pq rego.PreparedEvalQuery, name string, in *Input) []string {
	buf := topdown.NewBufferTracer()
	_, err := pq.Eval(ctx, rego.EvalParsedInput(in.value), rego.EvalQueryTracer(buf),
		rego.EvalRuleIndexing(false), rego.EvalEarlyExit(false))
	pkg := ast.MustParseRef("data.admitd.stages." + name)
	seen := map[*ast.Rule]*ruleTrace{}
	var order []*ruleTrace
	for _, ev := range *buf {
		rule, ok := ev.Node.(*ast.Rule)
		if !ok || len(rule.Head.Args) > 0 || rule.Module == nil {
			continue // functions are called too often to be worth listing
		}
		rt := seen[rule]
		if rt == nil {
			rt = &ruleTrace{rule: rule}
			seen[rule] = rt
			order = append(order, rt)
		}
		switch ev.Op {
		case topdown.EnterOp:
			rt.entered = true
		case topdown.ExitOp:
			rt.exited = true
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return less(order[i].rule.Location, order[j].rule.Location) })
	out := make([]string, 0, len(order)+1)
	for _, rt := range order {
		title := e.ruleTitle(rt.rule)
		if !rt.entered || (title == "" && !verdictRule(rt.rule)) {
			continue // untitled helpers (message text, schema) are noise
		}
		verdict := "failed"
		if rt.exited {
			verdict = "fired "
		}
		out = append(out, fmt.Sprintf("%s %s%s  %s", verdict, e.ruleName(rt.rule, pkg), title, where(rt.rule.Location)))
	}
	if err != nil {
		out = append(out, "evaluation error: "+err.Error())
	}
	return out
}

// verdictRule says whether a rule is one a stage is judged by.
func verdictRule(r *ast.Rule) bool {
	switch r.Head.Name {
	case "allow", "deny", "warn":
		return true
	}
	return false
}

// ruleName is the rule's ref, relative to the stage's package when it is
// in it.
func (e *Engine) ruleName(r *ast.Rule, pkg ast.Ref) string {
	name := r.Head.Ref().String()
	if r.Head.Name != "" && len(r.Head.Reference) <= 1 {
		name = string(r.Head.Name)
	}
	if r.Default {
		name = "default " + name
	}
	if !r.Module.Package.Path.Equal(pkg) {
		name = strings.TrimPrefix(r.Module.Package.Path.String(), "data.") + "." + name
	}
	return name
}

// ruleTitle is the rule's METADATA title, in parentheses, if it has one.
func (e *Engine) ruleTitle(r *ast.Rule) string {
	as := e.compiler.GetAnnotationSet()
	if as == nil {
		return ""
	}
	for _, a := range as.GetRuleScope(r) {
		if a != nil && a.Title != "" {
			return " (" + a.Title + ")"
		}
	}
	return ""
}

func where(l *ast.Location) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", path.Base(l.File), l.Row)
}

func less(a, b *ast.Location) bool {
	if a == nil || b == nil {
		return b != nil
	}
	if a.File != b.File {
		return a.File < b.File
	}
	return a.Row < b.Row
}
