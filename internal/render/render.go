// Package render prints decisions for people (table) and programs (json).
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// Formats accepted by -o.
const (
	Table = "table"
	JSON  = "json"
)

// CheckFormat rejects unknown output formats.
func CheckFormat(f string) error {
	if f != Table && f != JSON {
		return fmt.Errorf("unknown output format %q (want table or json)", f)
	}
	return nil
}

// Decision writes d in the given format.
func Decision(w io.Writer, format string, d *admission.Decision) error {
	if format == JSON {
		return WriteJSON(w, d)
	}
	return decisionTable(w, d)
}

// WriteJSON writes v as indented JSON, as every -o json output is.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func decisionTable(w io.Writer, d *admission.Decision) error {
	verdict := "DENIED"
	if d.Allowed {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(w, "%s  candidate %s (raft %s, api %s)\n", verdict, d.Candidate.ID, d.Candidate.RaftAddr, d.Candidate.APIURL)
	if d.Phase == facts.PhasePromote {
		fmt.Fprintf(w, "phase promote, admission %s\n", d.AdmissionID)
	}
	if d.StoppedAt != "" {
		fmt.Fprintf(w, "stopped at stage %s\n", d.StoppedAt)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tOUTCOME\tCODE\tMESSAGE")
	for _, s := range d.Stages {
		stageRows(tw, s)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	explainRows(w, d)
	fmt.Fprintf(w, "reason: %s\n", d.Reason)
	if o := d.Override; o != nil {
		lifted := make([]string, 0, len(o.Denies))
		for _, v := range o.Denies {
			lifted = append(lifted, v.Code)
		}
		fmt.Fprintf(w, "override: %s (%q); lifted: %s\n", strings.Join(o.Codes, ", "), o.Reason, orNone(lifted))
	}
	fmt.Fprintf(w, "decision %s  policy %s  config index %d%s\n", d.DecisionID, shortRev(d.PolicyRevision), d.ConfigIndex, appliedText(d))
	return nil
}

func stageRows(w io.Writer, s admission.StageResult) {
	rows := 0
	for _, v := range s.Deny {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cell(s.Name, rows), cell(outcome(s), rows), v.Code, oneLine(v.Message))
		rows++
	}
	for _, v := range s.Warn {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cell(s.Name, rows), cell(outcome(s), rows), "warn "+v.Code, oneLine(v.Message))
		rows++
	}
	if rows == 0 {
		fmt.Fprintf(w, "%s\t%s\t-\t\n", s.Name, outcome(s))
	}
}

// outcome marks a stage whose denies only warn.
func outcome(s admission.StageResult) string {
	if s.Enforcement == admission.EnforcementWarn {
		return string(s.Outcome) + " (warn mode)"
	}
	return string(s.Outcome)
}

// explainRows lists, after the table, what --explain found per stage.
func explainRows(w io.Writer, d *admission.Decision) {
	for _, s := range d.Stages {
		if len(s.Explain) == 0 {
			continue
		}
		fmt.Fprintf(w, "explain %s:\n", s.Name)
		for _, line := range s.Explain {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// cell shows the stage and outcome on its first row only.
func cell(s string, row int) string {
	if row > 0 {
		return ""
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func shortRev(r string) string {
	if len(r) > 19 {
		return r[:19]
	}
	return r
}

func appliedText(d *admission.Decision) string {
	if d.AlreadyMember != "" {
		return "  already a " + string(d.AlreadyMember) + ": nothing applied"
	}
	if d.Removed != nil {
		text := fmt.Sprintf("  removed: %s at index %d", d.Removed.Suffrage, d.Removed.Index)
		if d.Tombstoned {
			text += ", id tombstoned"
		}
		return text
	}
	if d.Applied == nil {
		if d.Enforced {
			return "  applied: no"
		}
		return "  (not enforced)"
	}
	return fmt.Sprintf("  applied: %s at index %d", d.Applied.Suffrage, d.Applied.Index)
}

func orNone(codes []string) string {
	if len(codes) == 0 {
		return "nothing (the decision carries none of those codes)"
	}
	return strings.Join(codes, ", ")
}
