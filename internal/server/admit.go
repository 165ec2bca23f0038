package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
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
		s.forwardOnce(w, r, body)
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
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AdmitTimeout)
	defer cancel()
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
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
	s.fillSelf(doc.Topology)
	if site := eng.SiteFacts(); site != nil {
		doc.Site = site
	}
	s.metrics.observeFacts(doc)
	in, err := admission.InputFromDocument(doc)
	if err != nil {
		return nil, err
	}
	d := eng.Evaluate(ctx, in)
	if req.Explain {
		eng.Explain(ctx, in, d)
	}
	d.DecidedBy = s.node.ID()
	d.Enforced = !req.DryRun
	if !d.Allowed || req.DryRun {
		s.record(d, "admission")
	}
	return d, nil
}

// apply adds the voter for an allowed decision. On a lost leadership or a
// timeout the change may have committed anyway: the configuration decides.
func (s *Server) apply(ctx context.Context, d *admission.Decision) error {
	grant, ok := d.Grant()
	if !ok {
		return errors.New("internal: an allowed decision without a grant")
	}
	applyCtx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	index, err := s.node.AddVoter(applyCtx, grant)
	switch {
	case err == nil:
		return s.applied(d, index)
	case errors.Is(err, raftglue.ErrMetadataNotApplied):
		s.log.Warn("voter added, but its API URL was not recorded", "candidate", d.Candidate.ID, "error", err)
		return s.applied(d, index)
	case errors.Is(err, raftglue.ErrConfigChanged):
		return err
	case errors.Is(err, raftglue.ErrLeadershipLost), errors.Is(err, raftglue.ErrTimeout):
		return s.settle(ctx, d, err)
	}
	s.metrics.configChange("failed")
	return err
}

func (s *Server) applied(d *admission.Decision, index uint64) error {
	d.Applied = &admission.Applied{Suffrage: facts.Voter, Index: index}
	s.metrics.configChange("applied")
	s.record(d, "admission")
	return nil
}

// settle finds out whether an add that lost its leader or its deadline
// committed, so the caller never retries a change that already happened.
func (s *Server) settle(ctx context.Context, d *admission.Decision, cause error) error {
	c := d.Candidate
	suffrage, present, err := s.node.HasMember(ctx, c.ID, c.RaftAddr)
	if err == nil && present && suffrage == facts.Voter {
		s.log.Warn("add committed despite the error", "decision_id", d.DecisionID, "candidate", c.ID, "error", cause)
		return s.applied(d, 0)
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
