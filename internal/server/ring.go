package server

import (
	"sync"

	"github.com/admitd/admitd/admission"
)

// ring keeps the most recent decisions, bounded.
type ring struct {
	mu    sync.Mutex
	items []*admission.Decision
	next  int
	full  bool
}

func newRing(n int) *ring { return &ring{items: make([]*admission.Decision, n)} }

func (r *ring) add(d *admission.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items[r.next] = d
	r.next = (r.next + 1) % len(r.items)
	if r.next == 0 {
		r.full = true
	}
}

// latest returns up to limit decisions, newest first.
func (r *ring) latest(limit int) []*admission.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.items)
	}
	if limit > n {
		limit = n
	}
	out := make([]*admission.Decision, 0, limit)
	for i := 1; i <= limit; i++ {
		out = append(out, r.items[(r.next-i+len(r.items))%len(r.items)])
	}
	return out
}

func (r *ring) find(id string) *admission.Decision {
	for _, d := range r.latest(len(r.items)) {
		if d.DecisionID == id {
			return d
		}
	}
	return nil
}
