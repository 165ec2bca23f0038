package admitd

import (
	"net"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// viaSum adds up the series of a counter family whose labels include
// every pair of want.
func viaSum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
					matched++
				}
			}
			if matched == len(want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// viaCounts is admitd_decisions_total and admitd_denies_total of one via.
func viaCounts(t *testing.T, reg *prometheus.Registry, via string) (decisions, denies float64) {
	t.Helper()
	return viaSum(t, reg, "admitd_decisions_total", map[string]string{"via": via}),
		viaSum(t, reg, "admitd_denies_total", map[string]string{"via": via})
}

func scenarioInput(t *testing.T, name string) *admission.Input {
	t.Helper()
	b, err := os.ReadFile("testdata/scenarios/" + name + "/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := facts.DecodeBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	in, err := admission.NewInput(doc)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// An evaluation (open to anyone who reaches /v1/evaluate) counts only as
// via="evaluate"; a real admission, a dry run and a removal each count as
// their own, so an alert on via="admission" sees admissions alone.
func TestDecisionMetricsVia(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	reg := prometheus.NewRegistry()
	g, rec := newFakeGate(t, f, fsm, WithRegisterer(reg), WithStaged(false)) // no promoter decisions in between
	ctx := gateTestContext(t)
	want := func(via string, decisions float64, denies bool) {
		t.Helper()
		d, n := viaCounts(t, reg, via)
		if d != decisions || (n > 0) != denies {
			t.Errorf("via=%s: %v decisions, %v denies; want %v decisions, denies %v", via, d, n, decisions, denies)
		}
	}

	for range 3 {
		if d := g.Evaluate(ctx, scenarioInput(t, "deny-already-initialized"), false); d.Allowed {
			t.Fatal("the scenario is allowed")
		}
	}
	want(ViaEvaluate, 3, true)
	for _, via := range []string{ViaAdmission, ViaDryRun, ViaRemoval, ViaPromotion} {
		want(via, 0, false)
	}
	if n := viaSum(t, reg, "admitd_denies_total", map[string]string{"via": ViaEvaluate, "stage": "init_state", "code": "ALREADY_INITIALIZED"}); n == 0 {
		t.Error("the evaluation's denies are not counted by stage and code")
	}

	// A real admission that is refused: no raft server at the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	d, err := g.Admit(ctx, Candidate{ID: "c0", RaftAddr: gone})
	if err != nil || d.Allowed {
		t.Fatalf("admitting a dead address: %+v %v", d, err)
	}
	want(ViaAdmission, 1, true)
	if n := viaSum(t, reg, "admitd_decisions_total", map[string]string{"via": ViaAdmission, "outcome": "deny"}); n != 1 {
		t.Errorf("admission denies = %v, want 1", n)
	}

	c := startFakeCandidate(t, "c1")
	fakeAdmitOK(t, g, c.candidate())
	want(ViaAdmission, 2, true)
	if n := viaSum(t, reg, "admitd_decisions_total", map[string]string{"via": ViaAdmission, "outcome": "allow"}); n != 1 {
		t.Errorf("admission allows = %v, want 1", n)
	}

	// A dry run, denied (c1 never caught up, so a third voter is unsafe):
	// its denies refuse no one and leave via="admission" alone.
	_, admissionDenies := viaCounts(t, reg, ViaAdmission)
	c2 := startFakeCandidate(t, "c2")
	if d, err := g.AdmitRequest(ctx, Request{Candidate: c2.candidate(), DryRun: true}); err != nil || d.Enforced || d.Allowed {
		t.Fatalf("dry run: %+v %v, want a deny", d, err)
	}
	want(ViaDryRun, 1, true)
	if d, n := viaCounts(t, reg, ViaAdmission); d != 2 || n != admissionDenies {
		t.Errorf("via=admission after a dry run: %v decisions, %v denies; want 2, %v", d, n, admissionDenies)
	}
	// The hook and the decision log keep the raw via, with "enforced".
	if got := rec.all(ViaDryRun); len(got) != 0 {
		t.Errorf("the hook saw via=dry_run: %+v", got)
	}

	if _, err := g.Remove(ctx, c.id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if d, _ := viaCounts(t, reg, ViaRemoval); d != 1 {
		t.Errorf("via=removal: %v decisions, want 1", d)
	}
	want(ViaEvaluate, 3, true)
	if d, n := viaCounts(t, reg, ViaAdmission); d != 2 || n != admissionDenies {
		t.Errorf("via=admission after a removal: %v decisions, %v denies; want 2, %v", d, n, admissionDenies)
	}
}

// The promote phase counts as via="promotion", not as an admission.
func TestDecisionMetricsViaPromotion(t *testing.T) {
	fsm := WrapFSM(nil)
	f := newFakeRaft(t, fsm)
	reg := prometheus.NewRegistry()
	g, _ := newFakeGate(t, f, fsm, WithRegisterer(reg), WithPolicies(fakeFastPolicies(t)))
	c := startFakeCandidate(t, "c1")
	fakeAdmitOK(t, g, c.candidate())
	// The candidate has heard from no leader: the promote phase denies.
	gateEventually(t, "a promotion decision is counted", func() bool {
		d, n := viaCounts(t, reg, ViaPromotion)
		return d > 0 && n > 0
	})
	if d, n := viaCounts(t, reg, ViaAdmission); d != 1 || n != 0 {
		t.Fatalf("via=admission: %v decisions, %v denies; want the one allow", d, n)
	}
}

func TestMetricVia(t *testing.T) {
	for _, tc := range []struct {
		via      string
		enforced bool
		want     string
	}{
		{ViaAdmission, true, ViaAdmission},
		{ViaAdmission, false, ViaDryRun},
		{ViaRemoval, true, ViaRemoval},
		{ViaRemoval, false, ViaDryRun},
		{ViaPromotion, true, ViaPromotion},
		{ViaEvaluate, false, ViaEvaluate},
	} {
		if got := MetricVia(&Decision{Enforced: tc.enforced}, tc.via); got != tc.want {
			t.Errorf("MetricVia(enforced %v, %q) = %q, want %q", tc.enforced, tc.via, got, tc.want)
		}
	}
}
