package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

// forwardedHeader marks a request a follower passed on, so a node that is
// no longer leader answers instead of forwarding again.
const forwardedHeader = "X-Admitd-Forwarded-By"

// DecodeAdmissionRequest reads a request strictly and validates it.
func DecodeAdmissionRequest(body []byte, selfID, selfRaft string) (api.AdmissionRequest, error) {
	var req api.AdmissionRequest
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

// Admit runs one admission through the gate.
func (s *Server) Admit(ctx context.Context, req api.AdmissionRequest) (*admission.Decision, error) {
	return s.gate.AdmitRequest(ctx, admitd.Request{Candidate: req.Candidate, DryRun: req.DryRun, Explain: req.Explain})
}

// mustJSON encodes v, which is always encodable here.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
