package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/client"
)

// staged says whether a decision added its candidate as a non-voter.
func staged(d *admission.Decision) bool {
	return d.Allowed && d.Applied != nil && d.Applied.Suffrage == facts.Nonvoter && d.AdmissionID != ""
}

// waitPromotion waits for the promotion of staged decision d, showing its
// progress on progress when that is a terminal.
func waitPromotion(ctx context.Context, cl *client.Client, server string, d *admission.Decision, progress io.Writer) (*api.AdmissionStatus, error) {
	tty := isTerminal(progress)
	defer clearLine(progress, tty)
	return cl.AwaitPromotion(ctx, server, d, func(st *api.AdmissionStatus) { showProgress(progress, tty, st) })
}

func showProgress(w io.Writer, tty bool, st *api.AdmissionStatus) {
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
