package admission

import (
	"encoding/json"

	"github.com/admitd/admitd/facts"
)

// Outcome is what one stage of a pipeline decided: OutcomeAllow,
// OutcomeDeny, OutcomeError (the stage could not be evaluated, which
// denies) or OutcomeSkipped (an earlier stage stopped the pipeline). In
// JSON it is a stage's "outcome", the plain string.
type Outcome string

// Stage outcomes.
const (
	OutcomeAllow   Outcome = "allow"
	OutcomeDeny    Outcome = "deny"
	OutcomeError   Outcome = "error"
	OutcomeSkipped Outcome = "skipped"
)

// CodeStageError is the deny code for a stage that could not be evaluated.
const CodeStageError = "STAGE_ERROR"

// Violation is one deny or warn entry.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StageResult is one stage's part of a decision.
type StageResult struct {
	Name       string      `json:"name"`
	Outcome    Outcome     `json:"outcome"`
	Deny       []Violation `json:"deny"`
	Warn       []Violation `json:"warn"`
	DurationMS *float64    `json:"duration_ms,omitempty"`
	// DurationShared says DurationMS is the time of one evaluation that
	// decided every evaluated stage at once, not this stage's alone.
	DurationShared bool     `json:"duration_shared,omitempty"`
	Explain        []string `json:"explain,omitempty"`
	// Enforcement is "warn" for a site stage whose denies only warn
	// (data.admitd.pipeline.enforcement); empty means enforced.
	Enforcement string `json:"enforcement,omitempty"`
	// Overridden are denies an operator's override let through.
	Overridden []Violation `json:"overridden,omitempty"`
}

// Applied records a configuration change made for an allowed decision.
type Applied struct {
	Suffrage facts.Suffrage `json:"suffrage"`
	Index    uint64         `json:"index"`
}

// Decision is the outcome of one evaluation. Decoding one from JSON never
// yields a Grant: only Evaluate attaches it.
type Decision struct {
	DecisionID string `json:"decision_id"`
	// AdmissionID ties the decisions of one staged join together: the
	// admit decision and every promote decision after it.
	AdmissionID    string          `json:"admission_id,omitempty"`
	Phase          facts.Phase     `json:"phase,omitempty"`
	Allowed        bool            `json:"allowed"`
	Enforced       bool            `json:"enforced"`
	Reason         string          `json:"reason"`
	Permanent      bool            `json:"permanent"`
	Candidate      facts.Candidate `json:"candidate"`
	Stages         []StageResult   `json:"stages"`
	StoppedAt      string          `json:"stopped_at,omitempty"`
	PolicyRevision string          `json:"policy_revision"`
	ConfigIndex    uint64          `json:"config_index"`
	Applied        *Applied        `json:"applied"`
	// Removed records a staged non-voter removed for missing its deadline.
	Removed *Applied `json:"removed,omitempty"`
	// Override is the operator's override of this removal, if any.
	Override *OverrideRecord `json:"override,omitempty"`
	// AlreadyMember is the suffrage of a candidate that asked again and is
	// already in the configuration at that address, answering as itself
	// in the leader's term: nothing was decided by policy or applied.
	AlreadyMember facts.Suffrage `json:"already_member,omitempty"`
	// Tombstoned says a removal left a tombstone for the id.
	Tombstoned bool            `json:"tombstoned,omitempty"`
	DecidedBy  string          `json:"decided_by,omitempty"`
	Timestamp  string          `json:"timestamp,omitempty"`
	EvalMS     float64         `json:"eval_ms"`
	Facts      json.RawMessage `json:"facts"`

	grant *Grant
}

// StoppedStage is the stage that ended the evaluation, nil if none did.
func (d *Decision) StoppedStage() *StageResult {
	for i := range d.Stages {
		if d.Stages[i].Name == d.StoppedAt {
			return &d.Stages[i]
		}
	}
	return nil
}

// Grant is the proof that the policies allowed a candidate. Its fields are
// unexported and only Evaluate creates one, so code outside this package
// cannot fabricate permission to change membership.
type Grant struct {
	sealed      bool
	decisionID  string
	candidate   facts.Candidate
	configIndex uint64
	phase       facts.Phase
	change      string
}

// Grant returns the permission attached to an allowed decision.
func (d *Decision) Grant() (Grant, bool) {
	if d == nil || d.grant == nil || !d.Allowed {
		return Grant{}, false
	}
	return *d.grant, true
}

// Valid reports whether g was issued by Evaluate (a zero Grant is not).
func (g Grant) Valid() bool { return g.sealed }

// Candidate is the node the grant admits.
func (g Grant) Candidate() facts.Candidate { return g.candidate }

// ConfigIndex is the raft configuration index the facts were read at.
func (g Grant) ConfigIndex() uint64 { return g.configIndex }

// Phase is the phase the facts were collected for: an admit grant may add
// a member, a promote grant may make a staged non-voter a voter.
func (g Grant) Phase() facts.Phase { return g.phase }

// Change is the change the facts named (facts.ChangeRemove, ...).
func (g Grant) Change() string { return g.change }

// DecisionID names the decision that issued the grant.
func (g Grant) DecisionID() string { return g.decisionID }
