package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/admitd/admitd/facts"
)

// Override is an operator's acceptance, for one removal or demotion, of
// denies it names, with the reason. It is never applied by default.
type Override struct {
	Codes  []string `json:"codes"`
	Reason string   `json:"reason"`
}

// OverrideRecord is what an override did, kept in the decision (and so in
// the decision log): the codes asked for, the reason, and the denies it
// let through; none when it named no code the decision carried.
type OverrideRecord struct {
	Codes  []string    `json:"codes"`
	Reason string      `json:"reason"`
	Denies []Violation `json:"denies"`
}

// ErrBadOverride is an override without codes or a reason, or one that
// names a code no override may lift.
var ErrBadOverride = errors.New("bad override")

// Validate refuses an empty override and codes that may never be lifted.
func (o Override) Validate() error {
	if len(o.Codes) == 0 || strings.TrimSpace(o.Reason) == "" {
		return fmt.Errorf("%w: it needs the deny codes it overrides and a reason", ErrBadOverride)
	}
	for _, c := range o.Codes {
		if !overridable(c) {
			return fmt.Errorf("%w: %s can never be overridden (facts not collected or malformed, or an evaluation error)", ErrBadOverride, c)
		}
	}
	return nil
}

// overridable: facts that were not collected, are missing or malformed,
// and evaluation errors are never lifted (the decision knows nothing then),
// nor the denies that name a change that cannot be made at all.
func overridable(code string) bool {
	switch code {
	case "", "STAGE_ERROR", "NOT_A_MEMBER", "LAST_VOTER", "REMOVES_LEADER", "NOT_A_VOTER", "CHANGE_MALFORMED", "PHASE_MISMATCH":
		return false
	}
	for _, suffix := range []string{"_NOT_COLLECTED", "_MISSING", "_MALFORMED"} {
		if strings.HasSuffix(code, suffix) {
			return false
		}
	}
	return true
}

// EvaluateOverride is Evaluate for a removal or demotion under o: a stage
// whose denies are all among o's codes passes, its denies recorded as
// overridden, and the next stage runs. A stage with any other deny, or one
// that errored, still stops it; so does the facts backstop in conclude.
func (e *Engine) EvaluateOverride(ctx context.Context, in *Input, o Override) (*Decision, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if phaseOf(in.Doc) != facts.PhaseRemove {
		return nil, fmt.Errorf("%w: only a removal or a demotion can be overridden", ErrBadOverride)
	}
	in.override = &o
	defer func() { in.override = nil }()
	d := e.Evaluate(ctx, in)
	rec := &OverrideRecord{Codes: slices.Clone(o.Codes), Reason: o.Reason, Denies: []Violation{}}
	for _, st := range d.Stages {
		rec.Denies = append(rec.Denies, st.Overridden...)
	}
	d.Override = rec
	return d, nil
}

// lift applies the override to one stage's result.
func (o *Override) lift(r StageResult) StageResult {
	if o == nil || r.Outcome != OutcomeDeny || len(r.Deny) == 0 {
		return r
	}
	for _, v := range r.Deny {
		if !overridable(v.Code) || !slices.Contains(o.Codes, v.Code) {
			return r
		}
	}
	r.Overridden, r.Deny, r.Outcome = r.Deny, []Violation{}, OutcomeAllow
	return r
}
