package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/failpoint"
	"github.com/admitd/admitd/raftglue"
)

// AdmissionRequest is the body of POST /v1/admissions.
type AdmissionRequest struct {
	Candidate facts.Candidate `json:"candidate"`
	DryRun    bool            `json:"dry_run"`
	// Explain asks for the rules that fired or failed in each evaluated
	// stage (costly: only when asked).
	Explain bool `json:"explain,omitempty"`
}

// forwardedHeader marks a request a follower passed on, so a node that is
// no longer leader answers instead of forwarding again.
const forwardedHeader = "X-Admitd-Forwarded-By"

// DecodeAdmissionRequest reads a request strictly and validates it.
func DecodeAdmissionRequest(body []byte, selfID, selfRaft string) (AdmissionRequest, error) {
	var req AdmissionRequest
	if err := facts.StrictUnmarshal(body, &req); err != nil {
		return req, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if err := req.Candidate.Validate(); err != nil {
		return req, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Candidate.ID == selfID || req.Candidate.RaftAddr == selfRaft {
		return req, fmt.Errorf("%w: the candidate names this node (%s at %s)", ErrBadRequest, selfID, selfRaft)
	}
	return req, nil
}

func (s *Server) handleAdmissions(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := DecodeAdmissionRequest(body, s.node.ID(), s.node.Addr())
	if err != nil {
		writeError(w, err)
		return
	}
	if s.cfg.DryRun && !req.DryRun {
		req.DryRun = true // --mode dry-run: this node never asks for a change
		body = mustJSON(req)
	}
	if !s.node.IsLeader() {
		s.forward(w, r, body)
		return
	}
	d, err := s.Admit(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if !d.Allowed {
		status = http.StatusForbidden
	}
	writeJSON(w, status, d)
}

// Admit collects facts, evaluates them and, on an allow that is enforced,
// adds the candidate as a voter with the facts' configuration index. A
// change that raced in is re-collected and re-evaluated, a bounded number
// of times.
func (s *Server) Admit(ctx context.Context, req AdmissionRequest) (*admission.Decision, error) {
	if s.cfg.DryRun {
		req.DryRun = true
	}
	s.admitMu.Lock() // a promotion round may hold it; the budget starts after
	defer s.admitMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AdmitTimeout)
	defer cancel()
	for attempt := 1; attempt <= s.cfg.MaxAttempts; attempt++ {
		d, err := s.decide(ctx, req)
		if err != nil || !d.Allowed || req.DryRun {
			return d, err
		}
		err = s.apply(ctx, d)
		if errors.Is(err, raftglue.ErrConfigChanged) {
			s.metrics.configChange("configuration_changed")
			s.log.Warn("configuration changed since the facts were read; collecting again",
				"decision_id", d.DecisionID, "candidate", req.Candidate.ID, "attempt", attempt)
			continue
		}
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: gave up after %d attempts", ErrKeptChanging, s.cfg.MaxAttempts)
}

// decide gathers facts and evaluates them once.
func (s *Server) decide(ctx context.Context, req AdmissionRequest) (*admission.Decision, error) {
	if !s.node.IsLeader() {
		return nil, fmt.Errorf("%w: leadership moved before the facts were read", raftglue.ErrLeadershipLost)
	}
	eng := s.Engine() // one policy set for the whole decision, even across a reload
	doc := facts.Gather(ctx, s.cfg.Collect, req.Candidate, s.node)
	d, err := s.evaluate(ctx, eng, doc, req.Explain)
	if err != nil {
		return nil, err
	}
	d.Enforced = !req.DryRun
	if !d.Allowed || req.DryRun {
		s.record(d, "admission")
	}
	return d, nil
}

// evaluate completes collected facts with what only the leader knows and
// evaluates them with eng.
func (s *Server) evaluate(ctx context.Context, eng *admission.Engine, doc *facts.Document, explain bool) (*admission.Decision, error) {
	s.fillSelf(doc.Topology, eng.Revision()) // the revision deciding, even across a reload
	if site := eng.SiteFacts(); site != nil {
		doc.Site = site
	}
	s.metrics.observeFacts(doc)
	in, err := admission.InputFromDocument(doc)
	if err != nil {
		return nil, err
	}
	d := eng.Evaluate(ctx, in)
	if explain {
		eng.Explain(ctx, in, d)
	}
	d.DecidedBy = s.node.ID()
	d.Enforced = true
	return d, nil
}

// apply adds the candidate of an allowed decision: as a voter, or, staged,
// as a non-voter under an admission id (the decision's own) that the
// promoter takes from there. On a lost leadership or a timeout the change
// may have committed anyway: the configuration decides.
func (s *Server) apply(ctx context.Context, d *admission.Decision) error {
	failpoint.Inject("admit/before-add")
	// The facts may be seconds old: fail closed on a candidate that died.
	if gone := s.candidateGone(ctx, d.Candidate); gone != nil {
		if err := s.redecide(ctx, d, gone); err != nil || !d.Allowed {
			return err
		}
	}
	grant, ok := d.Grant()
	if !ok {
		return errors.New("internal: an allowed decision without a grant")
	}
	suffrage, add := facts.Voter, s.node.AddVoter
	if s.cfg.Staging.Enabled {
		suffrage, add = facts.Nonvoter, s.node.AddNonvoter
		d.AdmissionID = d.DecisionID
	}
	if err := s.tellAdmitted(ctx, d); err != nil {
		return s.refused(d, err)
	}
	applyCtx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	index, err := add(applyCtx, grant)
	failpoint.Inject("admit/after-add")
	switch {
	case err == nil, errors.Is(err, raftglue.ErrMetadataNotApplied): // the change stands
		return s.applied(d, suffrage, index)
	case errors.Is(err, raftglue.ErrConfigChanged):
		return err
	case errors.Is(err, raftglue.ErrLeadershipLost), errors.Is(err, raftglue.ErrTimeout):
		return s.settle(ctx, d, err, suffrage)
	}
	s.metrics.configChange("failed")
	return err
}

func (s *Server) applied(d *admission.Decision, suffrage string, index uint64) error {
	d.Applied = &admission.Applied{Suffrage: suffrage, Index: index}
	s.metrics.configChange("applied")
	s.record(d, "admission")
	return nil
}

// settle finds out whether an add as want (voter or nonvoter) that lost
// its leader or its deadline committed, so the caller never retries a
// change that already happened.
func (s *Server) settle(ctx context.Context, d *admission.Decision, cause error, want string) error {
	c := d.Candidate
	// Only the leader, after a barrier, reads committed membership; a
	// deposed leader's view may hold the add the new leader drops.
	suffrage, present, err := "", false, error(fmt.Errorf("%w: this node no longer leads", raftglue.ErrNotLeader))
	if s.node.IsLeader() {
		suffrage, present, err = s.node.HasMember(ctx, c.ID, c.RaftAddr)
	}
	if err == nil && present && suffrage == want {
		s.log.Warn("add committed despite the error", "decision_id", d.DecisionID, "candidate", c.ID, "error", cause)
		return s.applied(d, want, 0)
	}
	s.metrics.configChange("leadership_lost")
	d.Reason = fmt.Sprintf("allowed, but not applied: %v", cause)
	s.record(d, "admission")
	if err != nil {
		return fmt.Errorf("%w: %v; reading the configuration failed too: %v", ErrOutcomeUnknown, cause, err)
	}
	return fmt.Errorf("%w: %v", raftglue.ErrLeadershipLost, cause)
}

// mustJSON encodes v, which is always encodable here.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// candidateGone dials the candidate's raft address once more right before
// the add: facts can be seconds old, and adding a voter that is already
// dead costs the cluster a vote it cannot get back without an operator.
func (s *Server) candidateGone(ctx context.Context, c facts.Candidate) error {
	return facts.RaftAnswers(ctx, s.cfg.Collect, c.RaftAddr)
}

// redecide replaces d, an allow whose candidate stopped answering before
// the add, with a decision on fresh facts. Deciding again rather than
// editing the allow fails closed the usual way: the reachability stage
// denies with its own code and message, the facts show why, and the deny
// is recorded. A candidate that answers again is allowed on fresh facts.
func (s *Server) redecide(ctx context.Context, d *admission.Decision, gone error) error {
	s.log.Warn("candidate stopped answering before the add; deciding again",
		"decision_id", d.DecisionID, "candidate", d.Candidate.ID, "error", gone)
	explain := slices.ContainsFunc(d.Stages, func(st admission.StageResult) bool { return len(st.Explain) > 0 })
	fresh, err := s.decide(ctx, AdmissionRequest{Candidate: d.Candidate, Explain: explain})
	if err != nil {
		return err
	}
	*d = *fresh
	return nil
}
