package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/admitd/admitd"
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/raftglue"
)

// Sentinel errors of the HTTP layer.
var (
	ErrBadRequest     = errors.New("bad request")
	ErrTooLarge       = errors.New("request body too large")
	ErrUnauthorized   = errors.New("unauthenticated")
	ErrNoLeader       = errors.New("no leader")
	ErrKeptChanging   = admitd.ErrKeptChanging
	ErrNotFound       = errors.New("not found")
	ErrNotReady       = errors.New("not ready")
	ErrForwardFailed  = errors.New("forwarding to the leader failed")
	ErrOutcomeUnknown = admitd.ErrOutcomeUnknown
	ErrRateLimited    = errors.New("rate limited")
)

// errorTable maps errors to HTTP status and wire code, first match wins.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	{facts.ErrMalformed, http.StatusBadRequest, "BAD_REQUEST"},
	{ErrBadRequest, http.StatusBadRequest, "BAD_REQUEST"},
	{ErrUnauthorized, http.StatusUnauthorized, "UNAUTHENTICATED"},
	{ErrNotFound, http.StatusNotFound, "NOT_FOUND"},
	{admitd.ErrBadCandidate, http.StatusBadRequest, "BAD_REQUEST"},
	{admitd.ErrDryRun, http.StatusConflict, "DRY_RUN_MODE"},
	{admission.ErrBadOverride, http.StatusBadRequest, "BAD_REQUEST"},
	{ErrKeptChanging, http.StatusConflict, "CONFIGURATION_CHANGED"},
	{raftglue.ErrConfigChanged, http.StatusConflict, "CONFIGURATION_CHANGED"},
	{ErrNoLeader, http.StatusServiceUnavailable, "NO_LEADER"},
	{raftglue.ErrNotLeader, http.StatusServiceUnavailable, "NO_LEADER"},
	{raftglue.ErrLeadershipLost, http.StatusServiceUnavailable, "LEADERSHIP_LOST"},
	{ErrForwardFailed, http.StatusBadGateway, "FORWARD_FAILED"},
	{ErrCandidateRefused, http.StatusBadGateway, "CANDIDATE_REFUSED"},
	{ErrOutcomeUnknown, http.StatusServiceUnavailable, "OUTCOME_UNKNOWN"},
	{raftglue.ErrTimeout, http.StatusServiceUnavailable, "OUTCOME_UNKNOWN"},
	{ErrNotReady, http.StatusServiceUnavailable, "NOT_READY"},
	{ErrDryRunMode, http.StatusConflict, "DRY_RUN_MODE"},
	{ErrReloadUnavailable, http.StatusNotImplemented, "NOT_IMPLEMENTED"},
	{ErrRateLimited, http.StatusTooManyRequests, "RATE_LIMITED"},
}

func statusOf(err error) (int, string) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.status, row.code
		}
	}
	return http.StatusInternalServerError, "INTERNAL"
}

func writeError(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	writeJSON(w, status, api.ErrorBody{Error: api.Error{Code: code, Message: err.Error()}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if wantsPretty(w) {
		enc.SetIndent("", "  ")
	}
	_ = enc.Encode(v)
}
