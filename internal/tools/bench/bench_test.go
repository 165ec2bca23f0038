package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

const shippedFacts = "../../../testdata/scenarios/allow-2-to-3/facts.json"

// The synthesized inputs must still be allowed, or the scaling table would
// time denials instead of decisions.
func TestSynthesizedInputsAreAllowed(t *testing.T) {
	raw, err := os.ReadFile(shippedFacts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	shipped, err := admission.Load(ctx, admission.DirSource("../../../policies"))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(e *admission.Engine, doc []byte) *admission.Decision {
		t.Helper()
		d, err := facts.DecodeBytes(doc)
		if err != nil {
			t.Fatal(err)
		}
		in, err := admission.NewInput(d)
		if err != nil {
			t.Fatal(err)
		}
		return e.Evaluate(ctx, in)
	}
	for _, n := range []int{3, 99} {
		doc, err := withServers(raw, n)
		if err != nil {
			t.Fatal(err)
		}
		if d := decide(shipped, doc); !d.Allowed {
			t.Fatalf("%d servers: denied: %s", n, d.Reason)
		}
	}
	for _, shape := range []string{shapeIndexed, shapeScanned} {
		dir := filepath.Join(t.TempDir(), shape)
		if err := siteRules("../../../policies", dir, 30, shape); err != nil {
			t.Fatal(err)
		}
		e, err := admission.Load(ctx, admission.DirSource(dir))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Stages(); len(got) != 4 || got[3] != "site" {
			t.Fatalf("%s: stages %v", shape, got)
		}
		if d := decide(e, raw); !d.Allowed {
			t.Fatalf("%s: denied: %s", shape, d.Reason)
		}
	}
}

func TestBenchMetrics(t *testing.T) {
	out := "goos: linux\nBenchmarkJoin-2   \t      30\t  61234 ns/op\t         0.93 bare-p50-ms\t 3.7 gated-p50-ms\t 3.9 gated/bare-p50\nPASS\n"
	m, err := benchMetrics(out, "BenchmarkJoin")
	if err != nil {
		t.Fatal(err)
	}
	if m["bare-p50-ms"] != 0.93 || m["gated/bare-p50"] != 3.9 || m["ns/op"] != 61234 {
		t.Fatalf("got %v", m)
	}
	if _, err := benchMetrics("PASS\n", "BenchmarkJoin"); err == nil {
		t.Fatal("no result line accepted")
	}
}

func TestQuantileAndOrder(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if quantile(ds, 0.5) != 3 || quantile(ds, 0) != 1 || quantile(ds, 1) != 5 || quantile(nil, 0.5) != 0 {
		t.Fatal("quantile")
	}
	if got := strings.Join(order(1, []string{"a", "b", "c"}), ""); got != "bca" {
		t.Fatalf("order: %s", got)
	}
}
