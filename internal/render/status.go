package render

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// Status writes a node's state, its cluster's topology and the progress of
// the staged non-voters. A topology that could not be read is shown as
// such, not as an empty cluster.
func Status(w io.Writer, format string, st facts.NodeState, topo facts.Topology, staging []admission.StageProgress, topoErr error) error {
	if format == JSON {
		out := map[string]any{"node": st, "cluster": topo, "staging": staging}
		if topoErr != nil {
			out["cluster"] = nil
			out["cluster_error"] = topoErr.Error()
		} else {
			out["policy_revisions_agree"], _ = PolicyAgreement(topo)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "node %s  %s  leader %s  term %d  last index %d\n", st.NodeID, st.RaftState, orDash(st.LeaderID), st.Term, st.LastIndex)
	fmt.Fprintf(w, "initialized %v  cluster %s  version %s  policy %s\n", st.Initialized, orDash(st.ClusterID), st.Version, shortRev(st.PolicyRevision))
	if topoErr != nil {
		fmt.Fprintf(w, "cluster: unavailable: %v\n", topoErr)
		return nil
	}
	if !topo.Collected {
		fmt.Fprintf(w, "cluster: not collected: %s\n", topo.Error)
		return nil
	}
	fmt.Fprintf(w, "configuration index %d  leader %s\n", topo.ConfigIndex, topo.Leader.ID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tHEALTHY\tLAG\tPOLICY")
	// By id: raft's order is the order of the joins, which races.
	servers := slices.SortedFunc(slices.Values(topo.Servers), func(a, b facts.Server) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range servers {
		suffrage := s.Suffrage
		if slices.Contains(topo.Staged, s.ID) {
			suffrage += " (staged)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\n", s.ID, s.Address, suffrage, s.Healthy, s.Lag, orDash(shortRev(s.PolicyRevision)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, summary := PolicyAgreement(topo)
	if _, err := fmt.Fprintln(w, summary); err != nil {
		return err
	}
	for _, p := range staging {
		fmt.Fprintln(w, stagingLine(p))
	}
	return nil
}

// stagingLine is one staged non-voter's progress as the leader last saw it.
func stagingLine(p admission.StageProgress) string {
	line := fmt.Sprintf("staged %s (admission %s): deadline in %s", p.ID, p.AdmissionID, time.Until(p.Deadline).Round(time.Second))
	if c := p.CatchUp; c != nil && c.Collected {
		line += fmt.Sprintf("; lag %d entries, last contact %.0f ms, healthy %.1f s", c.Lag, c.LastContactMS, c.HealthyForMS/1000)
	}
	if p.Reason != "" {
		line += "; last decision: " + p.Reason
	}
	return line
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
