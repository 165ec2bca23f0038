package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// AdmittedPath is where a leader tells a candidate it admitted it, just
// before the raft change, so the candidate lets raft RPCs in.
const AdmittedPath = "/v1/admitted"

// ErrCandidateRefused is a candidate that did not take its admission.
var ErrCandidateRefused = errors.New("the candidate did not accept its admission")

// Admitted is the body of POST /v1/admitted.
type Admitted struct {
	ClusterID  string `json:"cluster_id"`
	LeaderID   string `json:"leader_id"`
	DecisionID string `json:"decision_id"`
}

// admittedTimeout bounds the call to the candidate.
const admittedTimeout = 2 * time.Second

// handleAdmitted opens this node's raft fence. A node that has state is a
// member already and has no fence to open.
func (s *Server) handleAdmitted(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var a Admitted
	if err := facts.StrictUnmarshal(body, &a); err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if a.ClusterID == "" || a.LeaderID == "" || a.DecisionID == "" {
		writeError(w, fmt.Errorf("%w: cluster_id, leader_id and decision_id are required", ErrBadRequest))
		return
	}
	if s.node.Fenced() {
		if err := s.node.OpenFence(body); err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("admitted: accepting raft traffic", "cluster_id", a.ClusterID, "leader", a.LeaderID, "decision_id", a.DecisionID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"fenced": s.node.Fenced(), "initialized": s.node.Initialized()})
}

// tellAdmitted asks the candidate to accept raft traffic from this cluster.
// Without it a fenced candidate would refuse the log while counting in the
// configuration, so a failure stops the add.
func (s *Server) tellAdmitted(ctx context.Context, d *admission.Decision) error {
	if d.Candidate.APIURL == "" {
		return nil // it runs nothing of admitd: no fence to open
	}
	ctx, cancel := context.WithTimeout(ctx, admittedTimeout)
	defer cancel()
	body := mustJSON(Admitted{ClusterID: s.node.ClusterID(), LeaderID: s.node.ID(), DecisionID: d.DecisionID})
	url := strings.TrimRight(d.Candidate.APIURL, "/") + AdmittedPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCandidateRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCandidateRefused, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s", ErrCandidateRefused, url, resp.Status)
	}
	return nil
}
