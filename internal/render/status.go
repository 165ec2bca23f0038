package render

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/admitd/admitd/facts"
)

// Status writes a node's state and its cluster's topology. A topology that
// could not be read is shown as such, not as an empty cluster.
func Status(w io.Writer, format string, st facts.NodeState, topo facts.Topology, topoErr error) error {
	if format == JSON {
		out := map[string]any{"node": st, "cluster": topo}
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
	fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tHEALTHY\tPOLICY")
	for _, s := range topo.Servers {
		suffrage := s.Suffrage
		if slices.Contains(topo.Staged, s.ID) {
			suffrage += " (staged)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", s.ID, s.Address, suffrage, s.Healthy, orDash(shortRev(s.PolicyRevision)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, summary := PolicyAgreement(topo)
	_, err := fmt.Fprintln(w, summary)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
