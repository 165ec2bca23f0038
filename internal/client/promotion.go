package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

// PromotionPoll paces AwaitPromotion.
const PromotionPoll = time.Second

// recordGrace bounds the wait for a promotion's decision once the
// configuration shows the voter: the leader records it just after raft
// applies the change.
const recordGrace = 5 * time.Second

// AwaitPromotion polls the admission of staged decision d until it settles
// (promoted or removed) or ctx ends; progress, if not nil, sees each
// status read while it is still staged. An admission the current leader
// does not know (an earlier leader decided it) is settled from the
// configuration.
func (c *Client) AwaitPromotion(ctx context.Context, server string, d *admission.Decision, progress func(*api.AdmissionStatus)) (*api.AdmissionStatus, error) {
	id := d.AdmissionID
	var settledAt time.Time // when the admission was first seen settled
	for {
		st, err := c.Admission(ctx, server, id)
		var se *StatusError
		switch {
		case err == nil:
			if settled(st) && settledAt.IsZero() {
				settledAt = time.Now()
			}
			if settled(st) && (recorded(st) || time.Since(settledAt) > recordGrace) {
				return st, nil
			}
			if progress != nil && !settled(st) {
				progress(st)
			}
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			if st := c.fromCluster(ctx, server, d); st != nil {
				return st, nil
			}
			return nil, fmt.Errorf("admission %s is unknown to the current leader (leadership moved?): check `admitd status`", id)
		case errors.As(err, &se) && se.Status < http.StatusInternalServerError:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("admission %s: not promoted before the wait ended (%v); it carries on: admitd status", id, ctx.Err())
		case <-time.After(PromotionPoll):
		}
	}
}

// fromCluster settles an admission the current leader does not know from
// the configuration: a voter was promoted, a candidate no longer there was
// removed; still a non-voter (its stage record lost) is left to the caller.
func (c *Client) fromCluster(ctx context.Context, server string, d *admission.Decision) *api.AdmissionStatus {
	topo, err := c.Cluster(ctx, server)
	if err != nil || !topo.Collected {
		return nil
	}
	st := &api.AdmissionStatus{AdmissionID: d.AdmissionID, Candidate: d.Candidate, State: api.StateRemoved}
	for _, s := range topo.Servers {
		if s.ID != d.Candidate.ID || s.Address != d.Candidate.RaftAddr {
			continue
		}
		if s.Suffrage != facts.Voter {
			return nil
		}
		st.State = api.StatePromoted
	}
	return st
}

func settled(st *api.AdmissionStatus) bool { return st.State != api.StateStaged }

// recorded says the newest decision is the one that settled the
// admission. An admission the current leader did not decide (no
// decisions) has none to wait for.
func recorded(st *api.AdmissionStatus) bool {
	if st.State != api.StatePromoted || len(st.Decisions) == 0 {
		return true
	}
	n := st.Decisions[0]
	return n.Applied != nil && n.Applied.Suffrage == facts.Voter
}
