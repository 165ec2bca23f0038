package render

import (
	"fmt"
	"sort"
	"strings"

	"github.com/admitd/admitd/facts"
)

// PolicyAgreement says whether every member of a topology reports the same
// policy revision. A member whose revision is unknown (it did not answer)
// breaks agreement: it cannot be proven to run the same set.
func PolicyAgreement(t facts.Topology) (bool, string) {
	byRev := map[string][]string{}
	for _, s := range t.Servers {
		rev := s.PolicyRevision
		if rev == "" {
			rev = "unknown"
		}
		byRev[rev] = append(byRev[rev], s.ID)
	}
	if len(byRev) == 0 {
		return false, "policy revisions: no members"
	}
	if len(byRev) == 1 {
		for rev, ids := range byRev {
			if rev != "unknown" {
				return true, fmt.Sprintf("policy revisions: all %d members run %s", len(ids), shortRev(rev))
			}
		}
	}
	revs := make([]string, 0, len(byRev))
	for rev := range byRev {
		revs = append(revs, rev)
	}
	sort.Strings(revs)
	parts := make([]string, 0, len(revs))
	for _, rev := range revs {
		ids := byRev[rev]
		sort.Strings(ids)
		parts = append(parts, fmt.Sprintf("%s on %s", shortRev(rev), strings.Join(ids, ", ")))
	}
	return false, "policy revisions DIFFER: " + strings.Join(parts, "; ")
}
