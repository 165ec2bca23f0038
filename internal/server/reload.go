package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/api"
)

// ReloadFunc builds a complete new policy set: read, compiled under its
// capabilities, its tests run, site facts attached. It must not touch the
// running set; an error leaves it in place.
type ReloadFunc func(ctx context.Context) (*admission.Engine, error)

// Reload triggers.
const (
	TriggerSignal = "signal"
	TriggerWatch  = "watch"
	TriggerAPI    = "api"
)

// Reload results.
const (
	ReloadReloaded  = "reloaded"
	ReloadUnchanged = "unchanged"
	ReloadFailed    = "failed"
)

// ReloadResult reports one reload.
type ReloadResult struct {
	Result           string                `json:"result"`
	Trigger          string                `json:"trigger"`
	At               string                `json:"at"`
	DurationMS       float64               `json:"duration_ms"`
	PolicyRevision   string                `json:"policy_revision"` // active after the reload
	PreviousRevision string                `json:"previous_revision"`
	Source           string                `json:"source"`
	Stages           []string              `json:"stages,omitempty"`
	Tests            *admission.TestReport `json:"tests,omitempty"`
	Notes            []string              `json:"notes,omitempty"`
	Error            string                `json:"error,omitempty"`
}

// ErrReloadFailed wraps a refused policy set.
var ErrReloadFailed = errors.New("policy reload refused")

// Reload builds a new policy set with the configured ReloadFunc and, only
// when it is complete and its tests pass, swaps it in atomically: every
// evaluation uses either the old set or the new one, never a mix. On any
// failure the running set stays, and the failure is logged, counted and
// returned. Reloads are serialized.
func (s *Server) Reload(ctx context.Context, trigger string) (ReloadResult, error) {
	if s.cfg.Reload == nil {
		return ReloadResult{}, ErrReloadUnavailable
	}
	s.ops.reloadMu.Lock()
	defer s.ops.reloadMu.Unlock()
	start := time.Now()
	old := s.Engine()
	res := ReloadResult{Trigger: trigger, At: start.UTC().Format(time.RFC3339Nano), PreviousRevision: old.Revision()}
	next, err := s.cfg.Reload(ctx)
	res.DurationMS = float64(time.Since(start).Nanoseconds()) / 1e6
	if err == nil && next == nil {
		err = errors.New("internal: reload built no policy set")
	}
	if err != nil {
		res.Result, res.Error = ReloadFailed, err.Error()
		res.PolicyRevision, res.Source, res.Stages = old.Revision(), old.Source(), old.Stages()
		s.ops.reloads.WithLabelValues(trigger, ReloadFailed).Inc()
		s.ops.last.Store(&res)
		// One line, so that grep finds the file and line with the refusal.
		s.log.Error("policy reload refused; the running policy set stays", "trigger", trigger,
			"policy_revision", old.Revision(), "error", strings.Join(strings.Fields(err.Error()), " "))
		return res, fmt.Errorf("%w: %v", ErrReloadFailed, err)
	}
	res.PolicyRevision, res.Source, res.Stages = next.Revision(), next.Source(), next.Stages()
	res.Tests, res.Notes = next.Tests(), next.Notes()
	for _, n := range res.Notes {
		s.log.Warn("policy set", "note", n)
	}
	if next.Revision() == old.Revision() && reflect.DeepEqual(next.SiteFacts(), old.SiteFacts()) &&
		reflect.DeepEqual(next.Enforcement(), old.Enforcement()) {
		res.Result = ReloadUnchanged
		s.ops.reloads.WithLabelValues(trigger, ReloadUnchanged).Inc()
		s.ops.last.Store(&res)
		s.log.Info("policy reload: nothing changed", "trigger", trigger, "policy_revision", old.Revision())
		return res, nil
	}
	s.SetEngine(next)
	s.ops.activated(next)
	res.Result = ReloadReloaded
	s.ops.reloads.WithLabelValues(trigger, ReloadReloaded).Inc()
	s.ops.last.Store(&res)
	s.log.Info("policies reloaded", "trigger", trigger, "previous_revision", old.Revision(),
		"policy_revision", next.Revision(), "source", next.Source(), "stages", next.Stages(), "duration_ms", res.DurationMS)
	if t := next.Tests(); t != nil && t.Passed == 0 {
		s.log.Warn("the policy set holds no test: accepted only because of --allow-untested-policies", "source", next.Source())
	}
	return res, nil
}

// reloadFailedBody is the contract's error body with the reload's report.
type reloadFailedBody struct {
	Error  api.Error    `json:"error"`
	Reload ReloadResult `json:"reload"`
}

// handleReload is POST /v1/policies/reload: 200 with the report when the
// new set is active (or nothing changed), 422 with the error (file and
// line, or the failing tests) and the report when the set was refused.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	res, err := s.Reload(r.Context(), TriggerAPI)
	switch {
	case errors.Is(err, ErrReloadFailed):
		writeJSON(w, http.StatusUnprocessableEntity, reloadFailedBody{
			Error:  api.Error{Code: "POLICY_RELOAD_FAILED", Message: err.Error()},
			Reload: res,
		})
	case err != nil:
		writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
