package server

import (
	"fmt"
	"net/http"

	"github.com/admitd/admitd/facts"
)

// handleRemoveMember removes a server at the current configuration index
// and records a tombstone, so the id is refused until an operator clears it.
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	if s.cfg.DryRun {
		writeError(w, fmt.Errorf("%w: this node runs with --mode dry-run and never changes membership", ErrDryRunMode))
		return
	}
	id, ok := s.leaderTarget(w, r)
	if !ok {
		return
	}
	rm, err := s.gate.RemoveMember(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rm.Removal)
}

// handleClearTombstone lets a removed id be admitted again.
func (s *Server) handleClearTombstone(w http.ResponseWriter, r *http.Request) {
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
	if !s.node.IsLeader() {
		s.forward(w, r, nil)
		return "", false
	}
	id := r.PathValue("id")
	if err := facts.ValidateID(id); err != nil {
		writeError(w, fmt.Errorf("%w: id: %v", ErrBadRequest, err))
		return "", false
	}
	return id, true
}
