package server

import (
	"sync"
	"sync/atomic"

	"github.com/admitd/admitd/admission"
)

// decisions keeps the decisions this node made, in memory, for
// GET /v1/decisions and GET /v1/admissions/{id}. Membership decisions
// (admissions, promotions, removals) and evaluations have stores of their
// own: /v1/evaluate is open even in token mode, and a flood of evaluations
// must not push out the trail of a real admission. The durable trail is the
// decision log (--decision-log); these are the recent ones.
type decisions struct {
	seq     atomic.Uint64 // orders decisions across the two stores
	changes *store        // via "admission", "promotion", "removal"
	evals   *store        // via "evaluate" (and anything else)
}

// newDecisions keeps the newest evals evaluations and the newest changes
// membership decisions, and older ones whose admission is still staged
// (pinned), up to changesMax membership decisions in all.
func newDecisions(evals, changes, changesMax int, pinned func() map[string]bool) *decisions {
	return &decisions{
		changes: &store{keep: changes, max: max(changes, changesMax), pinned: pinned},
		evals:   &store{keep: evals, max: evals},
	}
}

// isChange says whether a decision hook's via is a membership decision.
func isChange(via string) bool {
	return via == "admission" || via == "promotion" || via == "removal"
}

func (ds *decisions) add(d *admission.Decision, via string) {
	e := entry{seq: ds.seq.Add(1), d: d}
	if isChange(via) {
		ds.changes.add(e)
		return
	}
	ds.evals.add(e)
}

// latest is up to limit decisions of both stores merged, newest first.
func (ds *decisions) latest(limit int) []*admission.Decision {
	a, b := ds.changes.latest(limit), ds.evals.latest(limit)
	out := make([]*admission.Decision, 0, min(limit, len(a)+len(b)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].seq > b[0].seq) {
			out, a = append(out, a[0].d), a[1:]
		} else {
			out, b = append(out, b[0].d), b[1:]
		}
	}
	return out
}

// find is the decision with id, from either store.
func (ds *decisions) find(id string) *admission.Decision {
	if d := ds.changes.find(func(d *admission.Decision) bool { return d.DecisionID == id }); d != nil {
		return d
	}
	return ds.evals.find(func(d *admission.Decision) bool { return d.DecisionID == id })
}

// ofAdmission are the membership decisions of one admission, newest first.
func (ds *decisions) ofAdmission(id string) []*admission.Decision {
	out := []*admission.Decision{}
	for _, e := range ds.changes.latest(ds.changes.max) {
		if e.d.AdmissionID == id || e.d.DecisionID == id {
			out = append(out, e.d)
		}
	}
	return out
}

type entry struct {
	seq uint64
	d   *admission.Decision
}

// store keeps decisions oldest first: the newest keep, and older ones
// whose admission pinned names (read only when something must go), up to
// max in all, past which the oldest go whatever they are.
type store struct {
	mu     sync.Mutex
	items  []entry
	keep   int
	max    int
	pinned func() map[string]bool // admission ids whose decisions stay; nil: none
}

func (s *store) add(e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, e)
	if cut := len(s.items) - s.keep; cut > 0 {
		var pin map[string]bool
		if s.pinned != nil {
			pin = s.pinned()
		}
		var stay []entry
		for i := range cut {
			if d := s.items[i].d; pin[d.AdmissionID] || pin[d.DecisionID] {
				stay = append(stay, s.items[i])
			}
			s.items[i] = entry{} // no longer reachable through the array
		}
		if len(stay) == 0 {
			s.items = s.items[cut:]
		} else {
			s.items = append(stay, s.items[cut:]...)
		}
	}
	if over := len(s.items) - s.max; over > 0 {
		clear(s.items[:over])
		s.items = s.items[over:]
	}
}

// latest returns up to limit entries, newest first.
func (s *store) latest(limit int) []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(limit, len(s.items))
	out := make([]entry, 0, n)
	for i := len(s.items) - 1; i >= len(s.items)-n; i-- {
		out = append(out, s.items[i])
	}
	return out
}

func (s *store) find(match func(*admission.Decision) bool) *admission.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.items) - 1; i >= 0; i-- {
		if match(s.items[i].d) {
			return s.items[i].d
		}
	}
	return nil
}
