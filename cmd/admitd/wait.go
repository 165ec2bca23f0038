package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
)

// pollInterval paces the wait for a promotion.
const pollInterval = time.Second

// staged says whether a decision added its candidate as a non-voter.
func staged(d *admission.Decision) bool {
	return d.Allowed && d.Applied != nil && d.Applied.Suffrage == facts.Nonvoter && d.AdmissionID != ""
}

// waitPromotion polls the admission of staged decision d until it settles
// (promoted or removed) or ctx ends. Progress goes to progress when it is
// a terminal.
func waitPromotion(ctx context.Context, cl *client.Client, server string, d *admission.Decision, progress io.Writer) (*admission.Status, error) {
	tty := isTerminal(progress)
	id := d.AdmissionID
	var settledAt time.Time // when the admission was first seen settled
	for {
		st, err := cl.Admission(ctx, server, id)
		var se *client.StatusError
		switch {
		case err == nil:
			if done(st) && settledAt.IsZero() {
				settledAt = time.Now()
			}
			if done(st) && (recorded(st) || time.Since(settledAt) > recordGrace) {
				clearLine(progress, tty)
				return st, nil
			}
			showProgress(progress, tty, st)
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			if st := fromCluster(ctx, cl, server, d); st != nil {
				clearLine(progress, tty)
				return st, nil
			}
			return nil, fmt.Errorf("admission %s is unknown to the current leader (leadership moved?): check `admitd status`", id)
		case errors.As(err, &se) && se.Status < http.StatusInternalServerError:
			return nil, err
		}
		select {
		case <-ctx.Done():
			clearLine(progress, tty)
			return nil, fmt.Errorf("admission %s: not promoted before the wait ended (%v); it carries on: admitd status", id, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// fromCluster settles an admission the current leader does not know (an
// earlier leader decided it) from the configuration: a voter was
// promoted, a candidate no longer there was removed; still a non-voter
// (its stage record lost) is left to the caller.
func fromCluster(ctx context.Context, cl *client.Client, server string, d *admission.Decision) *admission.Status {
	topo, err := cl.Cluster(ctx, server)
	if err != nil || !topo.Collected {
		return nil
	}
	st := &admission.Status{AdmissionID: d.AdmissionID, Candidate: d.Candidate, State: admission.StateRemoved}
	for _, s := range topo.Servers {
		if s.ID != d.Candidate.ID || s.Address != d.Candidate.RaftAddr {
			continue
		}
		if s.Suffrage != facts.Voter {
			return nil
		}
		st.State = admission.StatePromoted
	}
	return st
}

func done(st *admission.Status) bool { return st.State != admission.StateStaged }

// recordGrace bounds the wait for a promotion's decision once the
// configuration shows the voter: the leader records it just after raft
// applies the change.
const recordGrace = 5 * time.Second

// recorded says the newest decision is the one that settled the
// admission. An admission the current leader did not decide (no
// decisions) has none to wait for.
func recorded(st *admission.Status) bool {
	if st.State != admission.StatePromoted || len(st.Decisions) == 0 {
		return true
	}
	n := st.Decisions[0]
	return n.Applied != nil && n.Applied.Suffrage == facts.Voter
}

func showProgress(w io.Writer, tty bool, st *admission.Status) {
	if !tty || st.Progress == nil {
		return
	}
	p := st.Progress
	line := fmt.Sprintf("staged %s: waiting", st.Candidate.ID)
	if c := p.CatchUp; c != nil && c.Collected {
		line = fmt.Sprintf("staged %s: lag %d entries, last contact %.0f ms, healthy %.1f s", st.Candidate.ID,
			c.Lag, c.LastContactMS, c.HealthyForMS/1000)
	}
	fmt.Fprintf(w, "\r\033[K%s; deadline in %s", line, time.Until(p.Deadline).Round(time.Second))
}

func clearLine(w io.Writer, tty bool) {
	if tty {
		fmt.Fprint(w, "\r\033[K")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
