package server

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

// handleRemoveMember decides on removing a member and, on an allow,
// removes it and tombstones its id: 200 applied, 403 denied (both with the
// decision), 409 when the configuration kept changing.
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	s.handleChange(w, r, false)
}

// handleDemoteMember is handleRemoveMember for making a voter a non-voter.
func (s *Server) handleDemoteMember(w http.ResponseWriter, r *http.Request) {
	s.handleChange(w, r, true)
}

func (s *Server) handleChange(w http.ResponseWriter, r *http.Request, demote bool) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req api.ChangeRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := facts.StrictUnmarshal(body, &req); err != nil {
			writeError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
			return
		}
	}
	if s.cfg.DryRun && !req.DryRun {
		req.DryRun = true // --mode dry-run: this node never asks for a change, forwarded or not
		body = mustJSON(req)
	}
	id, ok := s.leaderTargetBody(w, r, body)
	if !ok {
		return
	}
	d, err := s.gate.Change(r.Context(), admitd.ChangeRequest{ID: id, Demote: demote,
		DryRun: req.DryRun, Explain: req.Explain, Override: req.Override})
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

// handleClearTombstone lets a removed id be admitted again.
func (s *Server) handleClearTombstone(w http.ResponseWriter, r *http.Request) {
	if s.gate.DryRun() { // before forwarding: an enforcing leader would clear it
		writeError(w, admitd.ErrDryRun)
		return
	}
	id, ok := s.leaderTarget(w, r)
	if !ok {
		return
	}
	if err := s.gate.ClearTombstone(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("tombstone cleared", "id", id)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "tombstoned": false})
}

// leaderTarget reads the server id in the path on the leader; a follower
// forwards the request instead. ok is false when the answer is written.
func (s *Server) leaderTarget(w http.ResponseWriter, r *http.Request) (string, bool) {
	return s.leaderTargetBody(w, r, nil)
}

// leaderTargetBody is leaderTarget for a request whose body was read.
func (s *Server) leaderTargetBody(w http.ResponseWriter, r *http.Request, body []byte) (string, bool) {
	if !s.node.IsLeader() {
		s.forward(w, r, body)
		return "", false
	}
	id := r.PathValue("id")
	if err := facts.ValidateID(id); err != nil {
		writeError(w, fmt.Errorf("%w: id: %v", ErrBadRequest, err))
		return "", false
	}
	return id, true
}
