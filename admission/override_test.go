package admission_test

import (
	"context"
	"errors"
	"testing"

	"github.com/admitd/admitd/admission"
)

// 3 voters, one down: removing a healthy one leaves 1 healthy of 2, below
// a quorum of 2. An override naming QUORUM_UNSAFE lets it through and says
// so in the decision; one naming a code the decision does not carry lifts
// nothing.
func TestOverrideLiftsOnlyWhatItNames(t *testing.T) {
	e := loadShipped(t)
	in := scenarioInput(t, "deny-remove-healthy-voter-3-1-down")
	ctx := context.Background()
	if d := e.Evaluate(ctx, in); d.Allowed {
		t.Fatal("the scenario is allowed without an override")
	}
	d, err := e.EvaluateOverride(ctx, in, admission.Override{Codes: []string{"NOT_A_CODE_HERE"}, Reason: "x"})
	if err != nil || d.Allowed || d.Override == nil || len(d.Override.Denies) != 0 {
		t.Fatalf("an override of a code the decision lacks: %+v %v", d, err)
	}
	if _, ok := d.Grant(); ok {
		t.Fatal("a grant without an allow")
	}
	d, err = e.EvaluateOverride(ctx, in, admission.Override{Codes: []string{"QUORUM_UNSAFE"}, Reason: "replacing a disk"})
	if err != nil || !d.Allowed || d.Override == nil || d.Override.Reason != "replacing a disk" {
		t.Fatalf("override of QUORUM_UNSAFE: %+v %v", d, err)
	}
	if len(d.Override.Denies) != 1 || d.Override.Denies[0].Code != "QUORUM_UNSAFE" {
		t.Fatalf("overridden denies %+v", d.Override.Denies)
	}
	if g, ok := d.Grant(); !ok || g.Change() != "remove" {
		t.Fatalf("grant %+v %v", g, ok)
	}
}

// Codes that mean the facts are not there, or the change cannot be made,
// are never lifted; an override needs a reason; a join cannot be overridden.
func TestOverrideRefusals(t *testing.T) {
	e := loadShipped(t)
	ctx := context.Background()
	for _, o := range []admission.Override{
		{Codes: []string{"TOPOLOGY_NOT_COLLECTED"}, Reason: "x"},
		{Codes: []string{"STAGE_ERROR"}, Reason: "x"},
		{Codes: []string{"REMOVES_LEADER"}, Reason: "x"},
		{Codes: []string{"LAST_VOTER"}, Reason: "x"},
		{Codes: []string{"QUORUM_UNSAFE"}},
		{Reason: "no codes"},
	} {
		if _, err := e.EvaluateOverride(ctx, scenarioInput(t, "deny-remove-leader"), o); !errors.Is(err, admission.ErrBadOverride) {
			t.Errorf("override %+v: %v, want ErrBadOverride", o, err)
		}
	}
	join := scenarioInput(t, "deny-quorum-3-voters-1-down")
	if _, err := e.EvaluateOverride(ctx, join, admission.Override{Codes: []string{"QUORUM_UNSAFE"}, Reason: "x"}); !errors.Is(err, admission.ErrBadOverride) {
		t.Errorf("a join was overridden: %v", err)
	}
}
