package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
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
	if id == s.node.ID() {
		writeError(w, fmt.Errorf("%w: the leader cannot remove itself; transfer leadership first", ErrBadRequest))
		return
	}
	rm, err := s.removeMember(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rm)
}

func (s *Server) removeMember(ctx context.Context, id string) (*admission.Removal, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
	cc, err := s.node.ClusterConfig(ctx)
	if err != nil {
		return nil, err
	}
	if !hasServer(cc, id) {
		return nil, fmt.Errorf("%w: %s is not in the configuration", ErrNotFound, id)
	}
	index, err := s.node.RemoveServer(ctx, id, cc.Index)
	tombstoned := err == nil
	if errors.Is(err, raftglue.ErrMetadataNotApplied) {
		// The removal stands; say the tombstone is missing rather than
		// answer an error a retry could never fix (it would find no member).
		s.log.Warn("member removed, but its tombstone was not recorded", "id", id, "error", err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	s.metrics.configChange("removed")
	s.log.Info("member removed", "id", id, "index", index, "tombstoned", tombstoned)
	return &admission.Removal{ID: id, Removed: true, Index: index, ConfigIndex: cc.Index, Tombstoned: tombstoned, DecidedBy: s.node.ID()}, nil
}

func hasServer(cc facts.ClusterConfig, id string) bool {
	for _, sv := range cc.Servers {
		if sv.ID == id {
			return true
		}
	}
	return false
}

// handleClearTombstone lets a removed id be admitted again.
func (s *Server) handleClearTombstone(w http.ResponseWriter, r *http.Request) {
	id, ok := s.leaderTarget(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ApplyTimeout)
	defer cancel()
	if err := s.node.ClearTombstone(ctx, id); err != nil {
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
