package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
)

// forward passes a request to the leader and relays its answer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	// A request another node already passed on is answered, not forwarded
	// again, so two nodes that disagree on the leader cannot loop.
	if r.Header.Get(forwardedHeader) != "" {
		writeError(w, fmt.Errorf("%w: this node is not the leader", ErrNoLeader))
		return
	}
	leaderURL, leaderID, err := s.leaderURL()
	if err != nil {
		writeError(w, err)
		return
	}
	var sent atomic.Bool // the leader may have acted on it
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, r.Method, leaderURL+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrForwardFailed, err))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, s.node.ID())
	if auth := r.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil && sent.Load() && r.Method != http.MethodGet {
		// The leader had the request and gave no answer: it may have
		// changed the configuration before it died. Ask again: the answer
		// then says whether the candidate is already a member.
		writeError(w, fmt.Errorf("%w: leader %s at %s took the request and did not answer: %v", ErrOutcomeUnknown, leaderID, leaderURL, err))
		return
	}
	if err != nil {
		writeError(w, fmt.Errorf("%w: leader %s at %s: %v", ErrForwardFailed, leaderID, leaderURL, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra) // the leader's 429 says when to ask again
	}
	w.Header().Set("X-Admitd-Forwarded-To", leaderID)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 16*MaxBodyBytes))
}

// leaderURL finds the leader's API from the replicated member list.
func (s *Server) leaderURL() (string, string, error) {
	id := s.node.LeaderID()
	if id == "" {
		return "", "", fmt.Errorf("%w: this node knows no leader", ErrNoLeader)
	}
	m, ok := s.node.Members()[id]
	if !ok || m.APIURL == "" {
		return "", id, fmt.Errorf("%w: the leader %s has no known API address", ErrNoLeader, id)
	}
	return strings.TrimRight(m.APIURL, "/"), id, nil
}
