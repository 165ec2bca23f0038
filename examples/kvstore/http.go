package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd"
)

// service is the HTTP API of one server.
type service struct {
	id    string
	raft  *raft.Raft
	store *store
	gate  *admitd.Gate
}

const maxBody = 1 << 20

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /key/{k}", s.getKey)
	mux.HandleFunc("PUT /key/{k}", s.putKey)
	mux.HandleFunc("POST /join", s.join)
	mux.HandleFunc("DELETE /member/{id}", s.removeMember)
	mux.HandleFunc("GET /status", s.status)
	return mux
}

// getKey reads this server's copy: a follower may lag the leader.
func (s *service) getKey(w http.ResponseWriter, r *http.Request) {
	v, ok := s.store.get(r.PathValue("k"))
	if !ok {
		writeError(w, http.StatusNotFound, "no such key")
		return
	}
	io.WriteString(w, v)
}

// putKey replicates a write; only the leader takes it.
func (s *service) putKey(w http.ResponseWriter, r *http.Request) {
	if s.raft.State() != raft.Leader {
		s.notLeader(w, raft.ErrNotLeader)
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cmd, _ := json.Marshal(command{Op: "set", Key: r.PathValue("k"), Value: string(value)})
	f := s.raft.Apply(cmd, 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			s.notLeader(w, err)
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err, ok := f.Response().(error); ok {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// notLeader answers 503 with the leader's raft id, when one is known.
func (s *service) notLeader(w http.ResponseWriter, err error) {
	_, leader := s.raft.LeaderWithID()
	var nl *admitd.NotLeaderError
	if errors.As(err, &nl) {
		leader = raft.ServerID(nl.LeaderID)
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error(), "leader_id": string(leader)})
}

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// join asks the gate to admit a server. It deliberately does NOT do what
// raft example apps usually do here (find a server with the same id or
// address, RemoveServer it, then AddVoter with prevIndex 0): that lets any
// caller replace a member, or merge a node holding another cluster's log
// into this one. The gate decides on facts it collects itself and, on an
// allow, adds the server at the configuration index it read them at.
func (s *service) join(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad join request: "+err.Error())
		return
	}
	d, err := s.gate.Admit(r.Context(), admitd.Candidate{ID: req.ID, RaftAddr: req.RaftAddr})
	switch {
	case err != nil:
		s.gateError(w, err)
	case !d.Allowed:
		writeJSON(w, http.StatusForbidden, d) // d.Reason says which stage refused, and why
	default:
		writeJSON(w, http.StatusOK, d) // d.Applied.Suffrage: "nonvoter" until the gate promotes it
	}
}

// removeMember asks the gate to take a server out: the policies judge it
// (the quorum left, never the leader or the last voter), and on an allow
// the gate removes it with prevIndex and tombstones its id.
func (s *service) removeMember(w http.ResponseWriter, r *http.Request) {
	d, err := s.gate.Remove(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		s.gateError(w, err)
	case !d.Allowed:
		writeJSON(w, http.StatusForbidden, d)
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// gateError answers for a gate that could not decide.
func (s *service) gateError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, admitd.ErrNotLeader):
		s.notLeader(w, err)
	case errors.Is(err, admitd.ErrBadCandidate):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

type server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // "voter" or "nonvoter"
}

type status struct {
	ID       string   `json:"id"`
	State    string   `json:"state"`
	LeaderID string   `json:"leader_id"`
	Servers  []server `json:"servers"`
	Keys     int      `json:"keys"`
}

// status is this server's view of the cluster.
func (s *service) status(w http.ResponseWriter, r *http.Request) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	_, leader := s.raft.LeaderWithID()
	st := status{ID: s.id, State: s.raft.State().String(), LeaderID: string(leader),
		Servers: []server{}, Keys: s.store.len()}
	for _, srv := range f.Configuration().Servers {
		st.Servers = append(st.Servers, server{ID: string(srv.ID), Address: string(srv.Address),
			Suffrage: strings.ToLower(srv.Suffrage.String())})
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
