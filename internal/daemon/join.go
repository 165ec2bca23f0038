package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/raftglue"
)

// Join backoff bounds.
const (
	joinBackoffMin = 250 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

// join asks the cluster behind cfg.Join to admit this node, retrying
// errors and denies that may pass later, until JoinTimeout. A permanent
// deny ends it at once with ErrJoinRefused.
func join(ctx context.Context, cfg Config, node *raftglue.Node) error {
	log := cfg.Logger
	ctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
	defer cancel()
	cl := joinClient(cfg)
	req := api.AdmissionRequest{Candidate: facts.Candidate{ID: cfg.ID, RaftAddr: node.Addr(), APIURL: cfg.APIURL}}
	backoff := joinBackoffMin
	for attempt := 1; ; attempt++ {
		for _, url := range cfg.Join {
			done, err := joinOnce(ctx, log, cl, url, req, node)
			if done || err != nil {
				return err
			}
		}
		if member(ctx, node) {
			log.Info("joined: this node is in the cluster configuration")
			return nil
		}
		log.Info("join not admitted yet; retrying", "attempt", attempt, "in", backoff)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("join: not admitted within %s", cfg.JoinTimeout)
			}
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// joinOnce asks one server; done means admitted, an error means give up.
func joinOnce(ctx context.Context, log hclog.Logger, cl *client.Client, url string, req api.AdmissionRequest, node *raftglue.Node) (bool, error) {
	d, err := cl.Admit(ctx, url, req)
	var se *client.StatusError
	if errors.As(err, &se) && (se.Status == http.StatusBadRequest || se.Status == http.StatusUnauthorized) {
		return false, fmt.Errorf("%w: %s answered %v", ErrJoinRefused, url, err)
	}
	if err != nil {
		log.Warn("join request failed", "server", url, "error", err)
		return false, nil
	}
	switch {
	case d.Allowed && d.AlreadyMember != "":
		log.Info("already a member", "as", string(d.AlreadyMember), "decision_id", d.DecisionID, "by", d.DecidedBy)
		return true, nil
	case d.Allowed && d.Applied != nil:
		log.Info("admitted", "as", string(d.Applied.Suffrage), "decision_id", d.DecisionID, "admission_id", d.AdmissionID,
			"by", d.DecidedBy, "index", d.Applied.Index)
		return true, nil
	case d.Permanent:
		// A lost answer to an earlier request that did add this node looks
		// like a duplicate; the log telling it so may still be on its way.
		if awaitMember(ctx, node, memberGrace) {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s (decision %s)", ErrJoinRefused, d.Reason, d.DecisionID)
	}
	if d.Allowed && !d.Enforced {
		log.Warn("join allowed but not applied: the cluster runs in dry-run mode; retrying", "server", url, "decision_id", d.DecisionID)
		return false, nil
	}
	log.Warn("join denied for now", "server", url, "decision_id", d.DecisionID, "reason", d.Reason)
	return false, nil
}

// memberGrace is how long a permanent deny waits for this node to see
// itself in the configuration before it counts as a refusal.
const memberGrace = 3 * time.Second

// awaitMember polls member for up to grace.
func awaitMember(ctx context.Context, node *raftglue.Node, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		if member(ctx, node) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// member says whether this node already sees itself in a configuration,
// which also covers an admission whose answer was lost.
func member(ctx context.Context, node *raftglue.Node) bool {
	_, present, err := node.HasMember(ctx, node.ID(), node.Addr())
	return err == nil && present
}
