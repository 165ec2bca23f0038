package admission

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/admitd/admitd/facts"
)

func benchInput(b *testing.B, scenario string) *Input {
	b.Helper()
	raw, err := os.ReadFile("../testdata/scenarios/" + scenario + "/facts.json")
	if err != nil {
		b.Fatal(err)
	}
	d, err := facts.DecodeBytes(raw)
	if err != nil {
		b.Fatal(err)
	}
	in, err := NewInput(d)
	if err != nil {
		b.Fatal(err)
	}
	return in
}

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	e, err := Load(context.Background(), DirSource("../policies"))
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// bareQuery is the baseline: one prepared query over the same modules and
// store, returning every stage at once, with no ordering or judging.
func bareQuery(b *testing.B, e *Engine) rego.PreparedEvalQuery {
	b.Helper()
	pq, err := e.newQuery("data.admitd.stages").PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return pq
}

// BenchmarkEvaluate is the full pipeline on an allowed candidate.
func BenchmarkEvaluate(b *testing.B) {
	e, in := benchEngine(b), benchInput(b, "allow-2-to-3")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !e.Evaluate(ctx, in).Allowed {
			b.Fatal("denied")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkBarePrepared is one bare PrepareForEval query over the policies.
func BenchmarkBarePrepared(b *testing.B) {
	e, in := benchEngine(b), benchInput(b, "allow-2-to-3")
	pq := bareQuery(b, e)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(in.value)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkPipelineVsBare runs both in alternating rounds in one process
// and reports the pipeline's cost as a ratio to the bare query.
func BenchmarkPipelineVsBare(b *testing.B) {
	e, in := benchEngine(b), benchInput(b, "allow-2-to-3")
	pq := bareQuery(b, e)
	ctx := context.Background()
	var pipe, bare time.Duration
	const round = 50
	for b.Loop() {
		start := time.Now()
		for range round {
			e.Evaluate(ctx, in)
		}
		pipe += time.Since(start)
		start = time.Now()
		for range round {
			_, _ = pq.Eval(ctx, rego.EvalParsedInput(in.value))
		}
		bare += time.Since(start)
	}
	n := float64(b.N * round)
	b.ReportMetric(n/pipe.Seconds(), "pipeline-decisions/s")
	b.ReportMetric(n/bare.Seconds(), "bare-evals/s")
	b.ReportMetric(pipe.Seconds()/bare.Seconds(), "pipeline/bare")
}

// BenchmarkEvaluateDenyEarly shows a deny at the first stage skips the rest.
func BenchmarkEvaluateDenyEarly(b *testing.B) {
	e, in := benchEngine(b), benchInput(b, "deny-raft-unreachable")
	ctx := context.Background()
	for b.Loop() {
		if e.Evaluate(ctx, in).Allowed {
			b.Fatal("allowed")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkEvaluateServers is the full pipeline on an allowed candidate
// with n healthy voters in the topology: how evaluation grows with the
// cluster.
func BenchmarkEvaluateServers(b *testing.B) {
	e := benchEngine(b)
	raw, err := os.ReadFile("../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []int{3, 9, 33, 99} {
		d, err := facts.DecodeBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		resolved := func(addr string) facts.Resolution { return facts.Resolution{CanonicalAddresses: []string{addr}} }
		servers := []facts.Server{{ID: "n1", Address: "127.0.0.1:7401", Suffrage: facts.Voter, Healthy: true, Resolution: resolved("127.0.0.1:7401")}}
		for i := 2; i <= n; i++ {
			addr := fmt.Sprintf("10.9.%d.%d:7401", i/250, i%250+1)
			servers = append(servers, facts.Server{
				ID: fmt.Sprintf("s%03d", i), Address: addr, Suffrage: facts.Voter, Healthy: true, Resolution: resolved(addr),
			})
		}
		d.Doc.Topology.Servers = servers
		in, err := InputFromDocument(d.Doc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !e.Evaluate(ctx, in).Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkNewInput is the one-time conversion of a document for OPA.
func BenchmarkNewInput(b *testing.B) {
	raw, _ := os.ReadFile("../testdata/scenarios/allow-2-to-3/facts.json")
	for b.Loop() {
		d, err := facts.DecodeBytes(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewInput(d); err != nil {
			b.Fatal(err)
		}
	}
}
