package server

import (
	"fmt"
	"net/http"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

func (s *Server) handleAdmissionStatus(w http.ResponseWriter, r *http.Request) {
	if !s.node.IsLeader() {
		s.forward(w, r, nil)
		return
	}
	st, err := s.admissionStatus(r, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) admissionStatus(r *http.Request, id string) (*api.AdmissionStatus, error) {
	st := &api.AdmissionStatus{AdmissionID: id, Decisions: s.admissionDecisions(id)}
	if sp, ok := s.gate.ProgressOf(id); ok {
		st.State, st.Candidate, st.Progress = api.StateStaged, sp.Candidate, &sp
		return s.promotedYet(r, st)
	}
	for cid, stage := range s.node.Staged() {
		if stage.AdmissionID == id { // staged, not yet checked by this leader
			st.State = api.StateStaged
			st.Candidate = facts.Candidate{ID: cid, RaftAddr: stage.RaftAddr, APIURL: stage.APIURL}
			return s.promotedYet(r, st)
		}
	}
	if len(st.Decisions) == 0 {
		return nil, fmt.Errorf("%w: no admission %q on this leader (decisions are kept in memory, newest first)", ErrNotFound, id)
	}
	latest := st.Decisions[0]
	st.Candidate = latest.Candidate
	suffrage, present, err := s.node.HasMember(r.Context(), latest.Candidate.ID, latest.Candidate.RaftAddr)
	if err != nil {
		return nil, err
	}
	st.State = settledState(st.Decisions, suffrage, present)
	return st, nil
}

// promotedYet answers a staged admission from the configuration once it
// has moved: the promotion commits a moment before the stage record ends.
func (s *Server) promotedYet(r *http.Request, st *api.AdmissionStatus) (*api.AdmissionStatus, error) {
	suffrage, present, err := s.node.HasMember(r.Context(), st.Candidate.ID, st.Candidate.RaftAddr)
	if err == nil && present && suffrage == facts.Voter {
		st.State, st.Progress = api.StatePromoted, nil
	}
	return st, nil
}

// settledState names the outcome of an admission that is no longer staged
// from its decisions and the candidate's membership now.
func settledState(ds []*admission.Decision, suffrage facts.Suffrage, present bool) api.State {
	switch {
	case present && suffrage == facts.Voter && ds[len(ds)-1].Applied != nil && ds[len(ds)-1].Applied.Suffrage == facts.Voter:
		return api.StateAdmitted
	case present && suffrage == facts.Voter:
		return api.StatePromoted
	case present:
		return api.StateStaged // its stage record was lost; see the log
	case ds[len(ds)-1].Applied == nil:
		return api.StateDenied
	}
	return api.StateRemoved
}

// admissionDecisions are the decisions of one admission, newest first,
// from the store of membership decisions, which evaluations do not share.
func (s *Server) admissionDecisions(id string) []*admission.Decision {
	return s.decisions.ofAdmission(id)
}
