package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
)

// Backoff between admission attempts.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 5 * time.Second
)

// admitRetrying asks for the admission until it is decided for good: a
// deny the policy does not call permanent (a staging slot in use, a voter
// down) and a cluster without a leader yet are asked again with backoff,
// until ctx ends. It then returns the last decision, or the last error.
// Progress goes to w: one updating line on a terminal, plain lines else.
func admitRetrying(ctx context.Context, cl *client.Client, server string, req api.AdmissionRequest, w io.Writer) (*admission.Decision, error) {
	tty := isTerminal(w)
	defer clearLine(w, tty)
	backoff := retryMin
	var last *admission.Decision // the newest deny, answered when time runs out mid-call
	for attempt := 1; ; attempt++ {
		d, err := cl.Admit(ctx, server, req)
		if err != nil && ctx.Err() != nil && last != nil {
			return last, nil
		}
		why := retryWhy(d, err)
		if why == "" || ctx.Err() != nil {
			return d, err
		}
		if d != nil {
			last = d
		}
		line := fmt.Sprintf("%s: attempt %d: %s; asking again in %s", req.Candidate.ID, attempt, why, backoff)
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(w, line)
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return last, nil
			}
			return d, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// retryWhy says why an answer may change by asking again, "" when it will
// not: a transient deny, no leader (yet), a lost leadership, a server
// that is not up yet.
func retryWhy(d *admission.Decision, err error) string {
	var se *client.StatusError
	switch {
	case err == nil && d != nil && !d.Allowed && !d.Permanent:
		return "denied for now (" + d.Reason + ")"
	case errors.As(err, &se) && se.Status == http.StatusBadGateway && se.Code == "FORWARD_FAILED":
		// The node asked knows a leader it cannot reach: one that just
		// died, until an election tells it otherwise.
		return "the leader it knows did not answer (" + se.Code + ")"
	case errors.As(err, &se) && se.Status == http.StatusServiceUnavailable:
		// OUTCOME_UNKNOWN too: asking again is safe, the answer then says
		// whether the candidate is already a member.
		return fmt.Sprintf("the cluster answered %d %s", se.Status, se.Code)
	case err != nil && !errors.As(err, &se) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		return "the server did not answer (" + err.Error() + ")"
	}
	return ""
}
