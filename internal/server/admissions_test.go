package server

import (
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

func TestSettledState(t *testing.T) {
	staged := &admission.Decision{Allowed: true, Phase: facts.PhaseAdmit, Applied: &admission.Applied{Suffrage: facts.Nonvoter}}
	direct := &admission.Decision{Allowed: true, Phase: facts.PhaseAdmit, Applied: &admission.Applied{Suffrage: facts.Voter}}
	denied := &admission.Decision{Phase: facts.PhaseAdmit}
	promoted := &admission.Decision{Allowed: true, Phase: facts.PhasePromote, Applied: &admission.Applied{Suffrage: facts.Voter}}
	removed := &admission.Decision{Phase: facts.PhasePromote, Removed: &admission.Applied{Suffrage: facts.Nonvoter}}
	cases := []struct {
		name     string
		ds       []*admission.Decision // newest first
		suffrage facts.Suffrage
		present  bool
		want     api.State
	}{
		{"direct voter", []*admission.Decision{direct}, facts.Voter, true, api.StateAdmitted},
		{"promoted", []*admission.Decision{promoted, staged}, facts.Voter, true, api.StatePromoted},
		{"promoted by an earlier leader", []*admission.Decision{staged}, facts.Voter, true, api.StatePromoted},
		{"removed at its deadline", []*admission.Decision{removed, staged}, "", false, api.StateRemoved},
		{"denied", []*admission.Decision{denied}, "", false, api.StateDenied},
		{"non-voter without a stage record", []*admission.Decision{staged}, facts.Nonvoter, true, api.StateStaged},
	}
	for _, c := range cases {
		if got := settledState(c.ds, c.suffrage, c.present); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
