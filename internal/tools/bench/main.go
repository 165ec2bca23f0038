// Command bench measures admitd against what a user could script around
// the stock `opa run --server`, side by side in one run on 127.0.0.1, and
// prints Markdown tables of medians and ratios (`make bench` runs it):
//
//  1. decisions: POST /v1/evaluate on admitd versus POST /v1/data/admitd on
//     opa run --server, same policies, same facts document, same client,
//     concurrency 1 and 8;
//  2. a dry-run admission of a live candidate (facts collected for real)
//     versus the probe floor: one TCP dial to its raft address plus one
//     fresh HTTP GET of its /v1/state;
//  3. a gated join versus a bare raft AddVoter on the same cluster (the
//     raftglue BenchmarkJoin, run here with `go test`);
//  4. scaling: decision latency with 3 to 99 servers in the topology and
//     with 10 to 1000 extra site rules.
//
// Every measurement is repeated -rounds times, alternating the contenders'
// order, and the tables give the median of the rounds. Everything started
// is stopped before it returns.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/admitd/admitd/internal/tools/proc"
)

type config struct {
	admitd, opa, goBin string
	policies, facts    string
	rounds             int
	trial              time.Duration
	joins              int
	only               string
	admitdEnv          string
}

func main() {
	var c config
	flag.StringVar(&c.admitd, "admitd", "bin/admitd", "admitd binary")
	flag.StringVar(&c.opa, "opa", "bin/opa", "stock OPA binary (go build -o bin/opa github.com/open-policy-agent/opa)")
	flag.StringVar(&c.goBin, "go", "go", "go command, for the in-process join benchmark")
	flag.StringVar(&c.policies, "policies", "policies", "policy directory both contenders load")
	flag.StringVar(&c.facts, "facts", "testdata/scenarios/allow-2-to-3/facts.json", "facts document to decide on")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds per measurement, contenders alternating")
	flag.DurationVar(&c.trial, "trial", time.Second, "length of one throughput trial")
	flag.IntVar(&c.joins, "joins", 30, "joins of each kind in the join benchmark")
	flag.StringVar(&c.only, "only", "", "comma-separated sections to run (decisions,dryrun,join,scaling); default all")
	flag.StringVar(&c.admitdEnv, "admitd-env", "", "comma-separated KEY=VALUE pairs added to the admitd processes' environment (say GOGC=100), to try a tuning")
	flag.Parse()
	if err := run(c); err != nil {
		if interrupted.Load() {
			os.Exit(130) // it failed because the servers were stopped
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// interrupted is set on SIGINT or SIGTERM before the servers are stopped.
var interrupted atomic.Bool

func (c config) want(section string) bool {
	if c.only == "" {
		return true
	}
	for _, s := range strings.Split(c.only, ",") {
		if strings.TrimSpace(s) == section {
			return true
		}
	}
	return false
}

func run(c config) error {
	facts, err := os.ReadFile(c.facts)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "admitd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ps := &servers{Group: &proc.Group{Dir: dir}}
	if c.admitdEnv != "" {
		ps.admitdEnv = strings.Split(c.admitdEnv, ",")
	}
	defer ps.StopAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			interrupted.Store(true)
			ps.StopAll()
			_ = os.RemoveAll(dir)
			os.Exit(130)
		}
	}()

	// Sections are measured in the order that keeps the CPUs quiet for
	// each (the join benchmark runs alone, after every server is stopped)
	// and printed in the order at the end.
	var sec [4]bytes.Buffer
	var res results
	progress := func(what string) { fmt.Fprintf(os.Stderr, "bench: %s ...\n", what) }
	if c.want("decisions") || c.want("dryrun") || c.want("scaling") {
		progress("starting a 3-node admitd cluster")
		if err := startCluster(c, ps, &res); err != nil {
			return err
		}
	}
	if c.want("decisions") {
		progress("1. decisions, admitd vs opa run --server")
		if err := decisions(&sec[0], c, ps, facts, &res); err != nil {
			return err
		}
	}
	if c.want("dryrun") {
		progress("2. dry-run admission vs probe floor")
		if err := dryRun(&sec[1], c, ps, &res); err != nil {
			return err
		}
	}
	if c.want("scaling") {
		progress("4. scaling with servers and rules")
		if err := scaling(&sec[3], c, ps, dir, facts, &res); err != nil {
			return err
		}
	}
	ps.StopAll() // the join benchmark wants the CPUs to itself
	if c.want("join") {
		progress("3. gated join vs bare AddVoter (go test -bench BenchmarkJoin ./raftglue/)")
		if err := joins(&sec[2], c, &res); err != nil {
			return err
		}
	}
	fmt.Printf("## Machine\n\n")
	printMachine(c)
	for i := range sec {
		_, _ = sec[i].WriteTo(os.Stdout)
	}
	res.printTargets()
	return nil
}

// results carries the figures the targets are checked on.
type results struct {
	cluster []*proc.Process // the admitd cluster; [0] leads
	targets []targetRow
}

type targetRow struct {
	what, want, got string
	met             bool
}

func (r *results) target(what, want, got string, met bool) {
	r.targets = append(r.targets, targetRow{what, want, got, met})
}

func (r *results) printTargets() {
	if len(r.targets) == 0 {
		return
	}
	fmt.Printf("## Targets\n\n| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range r.targets {
		mark := "met"
		if !t.met {
			mark = "**missed**"
		}
		fmt.Printf("| %s | %s | %s | %s |\n", t.what, t.want, t.got, mark)
	}
	fmt.Println()
}

func printMachine(c config) {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	goVersion := runtime.Version()
	if out, err := exec.Command(c.goBin, "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	opaVersion := "?"
	if out, err := exec.Command(c.opa, "version").Output(); err == nil {
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			opaVersion = strings.TrimSpace(strings.TrimPrefix(line, "Version:"))
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	fmt.Printf("| machine | |\n|---|---|\n")
	fmt.Printf("| CPU | %s |\n| logical CPUs (nproc) | %d |\n| OS | %s/%s, kernel %s |\n| Go | %s |\n| OPA (stock CLI, pinned) | %s |\n",
		model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, kernel, goVersion, opaVersion)
	fmt.Printf("| run | %s, %d rounds, %s trials |\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.rounds, c.trial)
	fmt.Printf("Everything runs on 127.0.0.1 on this one machine: the servers and the load-generating client share its CPUs.\n\n")
}

// startCluster starts a 3-voter admitd cluster (bench1 leads) with the
// admission rate limit off, so the benchmark measures work, not throttling.
func startCluster(c config, ps *servers, res *results) error {
	var common []string
	if supports(c.admitd, "--admission-rate") {
		common = append(common, "--admission-rate", "0")
	}
	leader, err := ps.admitd(c.admitd, "bench1", c.policies, append(common, "--bootstrap")...)
	if err != nil {
		return err
	}
	if err := leader.WaitReady("/readyz", 30*time.Second); err != nil {
		return err
	}
	if err := leader.WaitLeader(30 * time.Second); err != nil {
		return err
	}
	res.cluster = []*proc.Process{leader}
	for _, id := range []string{"bench2", "bench3"} {
		p, err := ps.admitd(c.admitd, id, c.policies, append(common, "--join", leader.URL)...)
		if err != nil {
			return err
		}
		if err := p.WaitBody("/v1/state", `"initialized":true`, 60*time.Second); err != nil {
			return err
		}
		res.cluster = append(res.cluster, p)
	}
	return leader.WaitHealthyVoters(3, 30*time.Second)
}

// supports says whether `admitd serve` has a flag, so the harness also
// drives older builds (to measure a before/after).
func supports(bin, flag string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return strings.Contains(string(out), flag+" ")
}

// order alternates which contender goes first from round to round.
func order[T any](round int, xs []T) []T {
	out := make([]T, len(xs))
	for i := range xs {
		out[i] = xs[(i+round)%len(xs)]
	}
	return out
}

func decisions(w io.Writer, c config, ps *servers, facts []byte, res *results) error {
	o, err := ps.opa(c.opa, "opa", c.policies)
	if err != nil {
		return err
	}
	if err := o.WaitReady("/health", 30*time.Second); err != nil {
		return err
	}
	opaBody, err := json.Marshal(map[string]json.RawMessage{"input": facts})
	if err != nil {
		return err
	}
	client := newClient()
	targets := []target{
		{name: "admitd", url: res.cluster[0].URL + "/v1/evaluate", body: facts, check: admitdAllowed},
		{name: "opa", url: o.URL + "/v1/data/admitd", body: opaBody, check: opaResult},
	}
	fmt.Fprintf(w, "## 1. Decisions: admitd `POST /v1/evaluate` vs `opa run --server` `POST /v1/data/admitd`\n\n")
	fmt.Fprintf(w, "Same policies (`%s`), same facts document (`%s`, %d bytes), same Go client with keep-alive, closed loop.\n", c.policies, c.facts, len(facts))
	fmt.Fprintf(w, "OPA answers with the value of every stage package (what a script would then walk in order); admitd answers with the decision.\n")
	fmt.Fprintf(w, "Median of %d rounds of %s each, contenders alternating.\n\n", c.rounds, c.trial)
	fmt.Fprintf(w, "| concurrency | contender | decisions/s | p50 | p99 |\n|---|---|---|---|---|\n")
	type agg struct{ rate, p50, p99 []float64 }
	for _, conc := range []int{1, 8} {
		got := map[string]*agg{"admitd": {}, "opa": {}}
		for r := range c.rounds {
			for _, tg := range order(r, targets) {
				t, err := closedLoop(client, tg, conc, c.trial, false)
				if err != nil {
					return err
				}
				a := got[tg.name]
				a.rate = append(a.rate, t.rate)
				a.p50 = append(a.p50, msF(t.p(0.5)))
				a.p99 = append(a.p99, msF(t.p(0.99)))
			}
		}
		for _, name := range []string{"admitd", "opa"} {
			a := got[name]
			fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s |\n", conc, name, median(a.rate), fmtMS(median(a.p50)), fmtMS(median(a.p99)))
		}
		ad, op := got["admitd"], got["opa"]
		tput := median(ad.rate) / median(op.rate)
		p99 := median(ad.p99) / median(op.p99)
		p50 := median(ad.p50) / median(op.p50)
		fmt.Fprintf(w, "| %d | **admitd / opa** | **%.2fx** | %.2fx | **%.2fx** |\n", conc, tput, p50, p99)
		res.target(fmt.Sprintf("evaluate throughput, concurrency %d", conc), ">= 2x opa", fmt.Sprintf("%.2fx", tput), tput >= 2)
		res.target(fmt.Sprintf("evaluate p99, concurrency %d", conc), "<= 0.5x opa", fmt.Sprintf("%.2fx", p99), p99 <= 0.5)
	}
	fmt.Fprintf(w, "\nResident memory after the trials: admitd %s, opa %s (admitd trades memory for collector time, see GOGC in docs/benchmarks.md).\n\n",
		rss(res.cluster[0]), rss(o))
	o.Stop()
	return nil
}

// rss is a process's resident set size, from /proc.
func rss(p *proc.Process) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return strings.TrimSpace(v)
			}
			return fmt.Sprintf("%.0f MB", float64(kb)/1024)
		}
	}
	return "?"
}

var allowedRE = regexp.MustCompile(`"allowed":\s*true`)

func admitdAllowed(status int, body []byte) error {
	if status != http.StatusOK || !allowedRE.Match(body[:min(len(body), 300)]) {
		return fmt.Errorf("want 200 and an allow, got %d %s", status, proc.Tail(string(body), 300))
	}
	return nil
}

func opaResult(status int, body []byte) error {
	if status != http.StatusOK || !strings.HasPrefix(string(body), `{"result":`) {
		return fmt.Errorf("want 200 and a result, got %d %s", status, proc.Tail(string(body), 300))
	}
	return nil
}

type section struct {
	DurationMS float64 `json:"duration_ms"`
}

func dryRun(w io.Writer, c config, ps *servers, res *results) error {
	cand, err := ps.admitd(c.admitd, "candidate1", c.policies)
	if err != nil {
		return err
	}
	if err := cand.WaitReady("/v1/state", 30*time.Second); err != nil {
		return err
	}
	host := strings.TrimPrefix(cand.URL, "http://")
	body, _ := json.Marshal(map[string]any{
		"candidate": map[string]string{"id": "candidate1", "raft_addr": cand.RaftAddr, "api_url": "http://" + host},
		"dry_run":   true,
	})
	client := newClient()
	leader := res.cluster[0]
	var buf strings.Builder
	var parts [4][]float64 // server-side: reachability, init_state, topology collection, evaluation
	admission := func() error {
		resp, err := client.Post(leader.URL+"/v1/admissions", "application/json", strings.NewReader(string(body)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		buf.Reset()
		_, _ = io.Copy(&buf, resp.Body)
		if resp.StatusCode != http.StatusOK || !allowedRE.MatchString(buf.String()) {
			return fmt.Errorf("dry-run admission: %d %s", resp.StatusCode, proc.Tail(buf.String(), 400))
		}
		var d struct {
			EvalMS float64 `json:"eval_ms"`
			Facts  struct {
				Reachability section `json:"reachability"`
				InitState    section `json:"init_state"`
				Topology     section `json:"topology"`
			} `json:"facts"`
		}
		if err := json.Unmarshal([]byte(buf.String()), &d); err == nil {
			for i, v := range []float64{d.Facts.Reachability.DurationMS, d.Facts.InitState.DurationMS, d.Facts.Topology.DurationMS, d.EvalMS} {
				parts[i] = append(parts[i], v)
			}
		}
		return nil
	}
	floor := probeFloor(cand.RaftAddr, cand.URL)
	kinds := []struct {
		name string
		f    func() error
	}{{"admitd dry-run admission", admission}, {"probe floor", floor}}
	p50s := map[string][]float64{}
	p99s := map[string][]float64{}
	for r := range c.rounds {
		for _, k := range order(r, kinds) {
			lat, err := sequential(c.trial, 5000, k.f)
			if err != nil {
				return err
			}
			p50s[k.name] = append(p50s[k.name], msF(quantile(lat, 0.5)))
			p99s[k.name] = append(p99s[k.name], msF(quantile(lat, 0.99)))
		}
	}
	fmt.Fprintf(w, "## 2. Dry-run admission of a live candidate vs the probe floor\n\n")
	fmt.Fprintf(w, "`POST /v1/admissions {\"dry_run\": true}` to the leader of a 3-voter admitd cluster, for a live, uninitialized `admitd serve`:\n")
	fmt.Fprintf(w, "facts collected for real (3 TCP handshakes to its raft address, GET of its /v1/state, the cluster's configuration and both followers' /v1/state), evaluated, answered.\n")
	fmt.Fprintf(w, "The probe floor is a bare client doing one TCP dial to the candidate's raft address, then one GET of its /v1/state on a fresh connection.\n")
	fmt.Fprintf(w, "One request at a time; median of %d rounds of %s each, alternating.\n\n", c.rounds, c.trial)
	fmt.Fprintf(w, "| | p50 | p99 |\n|---|---|---|\n")
	for _, k := range kinds {
		fmt.Fprintf(w, "| %s | %s | %s |\n", k.name, fmtMS(median(p50s[k.name])), fmtMS(median(p99s[k.name])))
	}
	ratio := median(p50s[kinds[0].name]) / median(p50s[kinds[1].name])
	fmt.Fprintf(w, "| **admission / floor** | **%.2fx** | %.2fx |\n\n", ratio, median(p99s[kinds[0].name])/median(p99s[kinds[1].name]))
	fmt.Fprintf(w, "Inside the admission, as the decision reports it (medians): collecting reachability %s, init_state %s (the same GET as reachability's), topology %s, all at once; evaluating %s.\n\n",
		fmtMS(median(parts[0])), fmtMS(median(parts[1])), fmtMS(median(parts[2])), fmtMS(median(parts[3])))
	res.target("dry-run admission p50", "<= 1.5x probe floor", fmt.Sprintf("%.2fx", ratio), ratio <= 1.5)
	cand.Stop()
	return nil
}

// variant is one policy set or facts document of the scaling table.
type variant struct {
	series string
	label  string
	n      float64
	target target
}

func scaling(w io.Writer, c config, ps *servers, dir string, facts []byte, res *results) error {
	var vs []variant
	var three []byte
	for _, n := range []int{3, 9, 33, 99} {
		doc, err := withServers(facts, n)
		if err != nil {
			return err
		}
		if n == 3 {
			three = doc
		}
		vs = append(vs, variant{series: "servers", label: fmt.Sprintf("%d servers", n), n: float64(n),
			target: target{name: fmt.Sprintf("%d servers", n), url: res.cluster[0].URL + "/v1/evaluate", body: doc, check: admitdAllowed}})
	}
	vs = append(vs, variant{series: shapeIndexed, label: "shipped + 0 rules", n: 0,
		target: target{name: "0 rules", url: res.cluster[0].URL + "/v1/evaluate", body: three, check: admitdAllowed}})
	var started []*proc.Process
	for _, shape := range []string{shapeIndexed, shapeScanned} {
		for _, n := range []int{10, 100, 1000} {
			pdir := filepath.Join(dir, fmt.Sprintf("policies-%s-%d", shape, n))
			if err := siteRules(c.policies, pdir, n, shape); err != nil {
				return err
			}
			args := []string{"--bootstrap"}
			for _, f := range []string{"--policy-tests", "--watch-policies"} {
				if supports(c.admitd, f) {
					args = append(args, f+"=false")
				}
			}
			p, err := ps.admitd(c.admitd, fmt.Sprintf("rules-%s-%d", shape, n), pdir, args...)
			if err != nil {
				return err
			}
			started = append(started, p)
			vs = append(vs, variant{series: shape, label: fmt.Sprintf("shipped + %d %s rules", n, shape), n: float64(n),
				target: target{name: p.Name, url: p.URL + "/v1/evaluate", body: three, check: admitdAllowed}})
		}
	}
	for _, p := range started {
		if err := p.WaitReady("/readyz", 60*time.Second); err != nil {
			return err
		}
		if err := p.WaitLeader(60 * time.Second); err != nil {
			return err
		}
	}
	client := newClient()
	p50 := map[string][]float64{}
	eval := map[string][]float64{}
	d := c.trial / 2
	for r := range c.rounds {
		for _, v := range order(r, vs) {
			t, err := closedLoop(client, v.target, 1, d, true)
			if err != nil {
				return err
			}
			p50[v.label] = append(p50[v.label], msF(t.p(0.5)))
			eval[v.label] = append(eval[v.label], quantileF(t.evalMS, 0.5))
		}
	}
	fmt.Fprintf(w, "## 4. Scaling: decision latency (admitd `POST /v1/evaluate`, concurrency 1)\n\n")
	fmt.Fprintf(w, "Topology: the facts document with n healthy voters. Rules: the shipped policies plus a site stage of n deny rules, none matching:\n")
	fmt.Fprintf(w, "*indexed* rules compare an input field with a constant (deny lists of ids, addresses, versions; OPA's rule index skips the non-matching ones),\n")
	fmt.Fprintf(w, "*scanned* rules call `contains` on input, which the index cannot see through, so every body runs (OPA does index `startswith`).\n")
	fmt.Fprintf(w, "`eval` is the decision's own `eval_ms` (policy evaluation inside admitd); `request` is the client-side latency.\n")
	fmt.Fprintf(w, "Median of %d rounds of %s each, all variants alternating.\n\n", c.rounds, d)
	fmt.Fprintf(w, "| series | variant | request p50 | growth | eval p50 | growth |\n|---|---|---|---|---|---|\n")
	base := map[string]string{"servers": "3 servers", shapeIndexed: "shipped + 0 rules", shapeScanned: "shipped + 0 rules"}
	last := map[string]string{"servers": "99 servers", shapeIndexed: "shipped + 1000 indexed rules", shapeScanned: "shipped + 1000 scanned rules"}
	growth := func(label, series string) (float64, float64) {
		b := base[series]
		return median(p50[label]) / median(p50[b]), median(eval[label]) / median(eval[b])
	}
	for _, series := range []string{"servers", shapeIndexed, shapeScanned} {
		rows := []string{}
		if series == shapeScanned {
			rows = append(rows, base[series])
		}
		for _, v := range vs {
			if v.series == series {
				rows = append(rows, v.label)
			}
		}
		for _, label := range rows {
			g1, g2 := growth(label, series)
			fmt.Fprintf(w, "| %s | %s | %s | %.2fx | %s | %.2fx |\n", series, label, fmtMS(median(p50[label])), g1, fmtMS(median(eval[label])), g2)
		}
	}
	fmt.Fprintln(w)
	for _, s := range []struct{ series, what string }{
		{"servers", "latency growth, 3 -> 99 servers"},
		{shapeIndexed, "latency growth, 0 -> 1000 extra rules (indexed)"},
		{shapeScanned, "latency growth, 0 -> 1000 extra rules (scanned)"},
	} {
		g1, g2 := growth(last[s.series], s.series)
		res.target(s.what, "<= 2x", fmt.Sprintf("request %.2fx, eval %.2fx", g1, g2), g1 <= 2 && g2 <= 2)
	}
	for _, p := range started {
		p.Stop()
	}
	return nil
}

// joins runs raftglue's BenchmarkJoin, which alternates gated and bare
// joins on one in-process cluster, and prints its figures.
func joins(w io.Writer, c config, res *results) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := runCmd(ctx, ".", c.goBin, "test", "-run", "^$", "-bench", "^BenchmarkJoin$",
		"-benchtime", strconv.Itoa(c.joins)+"x", "-count", "1", "./raftglue/")
	if err != nil {
		return err
	}
	m, err := benchMetrics(out, "BenchmarkJoin")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "## 3. Gated join vs bare AddVoter (same cluster)\n\n")
	fmt.Fprintf(w, "`go test -bench BenchmarkJoin ./raftglue/`: one in-process 3-voter cluster (raft's default timings, raft-wal on disk), %d joins of each kind, alternating;\n", c.joins)
	fmt.Fprintf(w, "each candidate is a fresh node serving /v1/state, removed again after its join.\n")
	fmt.Fprintf(w, "*gated* is what `POST /v1/admissions` does on the leader without the HTTP framing: collect the facts, evaluate, `Node.AddVoter(grant)` (which also records the candidate's API URL through the log);\n")
	fmt.Fprintf(w, "*ungated* is that `AddVoter` without facts or evaluation (raft's AddVoter, then the API URL recorded); *bare* is hashicorp/raft's `AddVoter` alone with the current configuration index.\n\n")
	fmt.Fprintf(w, "| | p50 | p90 |\n|---|---|---|\n")
	fmt.Fprintf(w, "| gated join | %s | %s |\n", fmtMS(m["gated-p50-ms"]), fmtMS(m["gated-p90-ms"]))
	fmt.Fprintf(w, "| &nbsp;&nbsp;collect facts | %s | |\n", fmtMS(m["gated-collect-p50-ms"]))
	fmt.Fprintf(w, "| &nbsp;&nbsp;evaluate | %s | |\n", fmtMS(m["gated-evaluate-p50-ms"]))
	fmt.Fprintf(w, "| &nbsp;&nbsp;AddVoter + record API URL | %s | |\n", fmtMS(m["gated-add-p50-ms"]))
	fmt.Fprintf(w, "| ungated AddVoter + record API URL | %s | |\n", fmtMS(m["ungated-p50-ms"]))
	fmt.Fprintf(w, "| bare AddVoter | %s | %s |\n", fmtMS(m["bare-p50-ms"]), fmtMS(m["bare-p90-ms"]))
	ratio := m["gated/bare-p50"]
	fmt.Fprintf(w, "| **gated / bare** | **%.2fx** | |\n\n", ratio)
	res.target("gated join p50", "<= 1.2x bare AddVoter", fmt.Sprintf("%.2fx", ratio), ratio <= 1.2)
	return nil
}

// benchMetrics reads the custom metrics of one `go test -bench` result line.
func benchMetrics(out, name string) (map[string]float64, error) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, name+"-") && !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"\t") {
			continue
		}
		f := strings.Fields(line)
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = v
		}
		return m, nil
	}
	return nil, errors.New(name + ": no result line in:\n" + proc.Tail(out, 2000))
}

func msF(d time.Duration) float64 { return float64(d) / 1e6 }

func fmtMS(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.0f µs", ms*1000)
	}
}
