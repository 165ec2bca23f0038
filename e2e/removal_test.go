package e2e

// Removal tests: DELETE /v1/members/{id} and POST /v1/members/{id}/demote
// are decided by the remove pipeline (admitd.pipeline.remove_stages) like
// joins, can be overridden code by code, and answer a decision; the CLI's
// `admitd remove` and `admitd demote` print it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// overrideRecord is a decision's override: the codes asked for, the
// reason, and the denies it let through.
type overrideRecord struct {
	Codes  []string    `json:"codes"`
	Reason string      `json:"reason"`
	Denies []violation `json:"denies"`
}

// changeExtras are the fields of a removal's or demotion's decision the
// shared decision type does not carry.
type changeExtras struct {
	Tombstoned bool            `json:"tombstoned"`
	Override   *overrideRecord `json:"override"`
	Stages     []struct {
		Name       string      `json:"name"`
		Overridden []violation `json:"overridden"`
	} `json:"stages"`
}

// overridden lists the overridden codes of one stage.
func (x changeExtras) overridden(stageName string) []string {
	var codes []string
	for _, s := range x.Stages {
		if s.Name == stageName {
			for _, v := range s.Overridden {
				codes = append(codes, v.Code)
			}
		}
	}
	return codes
}

// changeResult is one answer of DELETE /v1/members/{id} or
// POST /v1/members/{id}/demote.
type changeResult struct {
	admitResult
	extras changeExtras
}

// changeMember asks n to remove (or demote) id with body (nil: none). Like
// admit it asks again while the cluster has no leader, when nothing was
// decided; a transport error fails the test.
func changeMember(t *testing.T, n *node, id string, demote bool, body any) changeResult {
	t.Helper()
	r, err := sendChange(n, id, demote, body)
	for deadline := time.Now().Add(waitTimeout); err == nil && r.status == http.StatusServiceUnavailable &&
		(strings.Contains(r.body, "NO_LEADER") || strings.Contains(r.body, "LEADERSHIP_LOST")) && time.Now().Before(deadline); {
		time.Sleep(pollInterval)
		r, err = sendChange(n, id, demote, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sendChange(n *node, id string, demote bool, body any) (changeResult, error) {
	method, url := http.MethodDelete, n.url+"/v1/members/"+id
	if demote {
		method, url = http.MethodPost, url+"/demote"
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return changeResult{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return changeResult{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return changeResult{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := changeResult{admitResult: admitResult{status: resp.StatusCode, header: resp.Header, body: string(raw)}}
	if r.status == http.StatusOK || r.status == http.StatusForbidden {
		if err := json.Unmarshal(raw, &r.decision); err != nil {
			return r, fmt.Errorf("decoding the decision: %w\n%s", err, raw)
		}
		if err := json.Unmarshal(raw, &r.extras); err != nil {
			return r, fmt.Errorf("decoding the decision: %w\n%s", err, raw)
		}
	}
	return r, nil
}

// requireRemoved wants a 200 that removed id (a voter) and tombstoned it.
func requireRemoved(t *testing.T, r changeResult, id string) {
	t.Helper()
	d := r.decision
	if r.status != http.StatusOK || !d.Allowed || !d.Enforced || d.Candidate.ID != id ||
		d.Removed == nil || d.Removed.Index == 0 || d.Removed.Suffrage != "voter" || !r.extras.Tombstoned {
		t.Fatalf("removing %s: want 200, removed voter, tombstoned; got tombstoned=%v removed=%+v %s\n%s",
			id, r.extras.Tombstoned, d.Removed, explain(r.admitResult), r.body)
	}
	if d.Phase != "remove" {
		t.Errorf("removal decided in phase %q, want remove", d.Phase)
	}
}

// clusterOf forms a 3-node cluster n1..n3 with the options mk gives each
// node (n1 bootstraps, the others join it), like newClusterFrom for every
// node rather than the first.
func clusterOf(t *testing.T, mk func(id string) opts) []*node {
	t.Helper()
	boot := bootstrapNode(t, mk("n1"))
	nodes := []*node{boot}
	for _, id := range []string{"n2", "n3"} {
		o := mk(id)
		o.join = boot.url
		nodes = append(nodes, startNode(t, o))
		waitVoters(t, boot, len(nodes))
	}
	waitLeader(t, nodes...)
	return nodes
}

// byID is the node with id among nodes.
func byID(t *testing.T, nodes []*node, id string) *node {
	t.Helper()
	for _, n := range nodes {
		if n.id == id {
			return n
		}
	}
	t.Fatalf("no node %q among the nodes started", id)
	return nil
}

// changeCLI runs `admitd <verb> ... -o json` and decodes the decision it
// prints, asking again while the cluster has no leader.
func changeCLI(t *testing.T, args ...string) (cliResult, decision) {
	t.Helper()
	r, err := runCLI(args...)
	for deadline := time.Now().Add(waitTimeout); err == nil && noLeader(r) && time.Now().Before(deadline); {
		time.Sleep(pollInterval)
		r, err = runCLI(args...)
	}
	if err != nil {
		t.Fatal(err)
	}
	var d decision
	if slices.Contains(args, "json") {
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("admitd %v: exit %d, output is not a decision: %v\nstdout: %s\nstderr: %s", args, r.code, err, r.stdout, r.stderr)
		}
	}
	return r, d
}

// 1. With one of three voters dead, removing a healthy follower would
// leave one healthy voter of two: refused with the arithmetic, nothing
// changed. Removing the dead voter leaves two healthy of two: applied and
// tombstoned, and its id is refused afterwards.
func TestRemovalQuorumUnsafeThenDeadVoterRemoved(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	followers := others(nodes, leader)
	dead, alive := followers[0], followers[1]

	kill(t, dead)
	before := waitCluster(t, leader, 2, func(c cluster) bool {
		for _, s := range c.Servers {
			if s.ID == dead.id {
				return !s.Healthy && c.healthyVoters() == 2
			}
		}
		return false
	})

	r := changeMember(t, leader, alive.id, false, nil)
	requireRefused(t, r.admitResult, "topology", "QUORUM_UNSAFE", false)
	for _, s := range r.decision.Stages {
		for _, v := range s.Deny {
			// 2 voters remain, a quorum of 2 is 2, and only 1 healthy one
			// (the leader) would remain; the unhealthy voter is named.
			if v.Code == "QUORUM_UNSAFE" && (!regexp.MustCompile(`\b1\b.*\b2\b`).MatchString(v.Message) || !strings.Contains(v.Message, dead.id)) {
				t.Errorf("QUORUM_UNSAFE message lacks the arithmetic (1 healthy of 2 remaining, quorum 2) or the dead voter %s: %q", dead.id, v.Message)
			}
		}
	}
	if r.decision.Removed != nil || r.extras.Tombstoned {
		t.Fatalf("refused removal reports removed=%+v tombstoned=%v", r.decision.Removed, r.extras.Tombstoned)
	}
	sameConfig(t, "after the refused removal", before, mustCluster(t, leader))

	r = changeMember(t, leader, dead.id, false, nil)
	requireRemoved(t, r, dead.id)
	after := mustCluster(t, leader)
	if after.suffrage(dead.id) != "" || after.ConfigIndex <= before.ConfigIndex {
		t.Fatalf("after removing %s: suffrage %q, config index %d (was %d)", dead.id, after.suffrage(dead.id), after.ConfigIndex, before.ConfigIndex)
	}
	requireServers(t, after, leader.id, alive.id)

	// A fresh node under the removed id passes reachability and init_state,
	// so the topology stage is what refuses it, permanently.
	again := freshNode(t, dead.id)
	ar := admit(t, leader, again.candidate(), false)
	requireRefused(t, ar, "topology", "ID_TOMBSTONED", true)
	sameConfig(t, "after the refused admission", after, mustCluster(t, leader))
}

// maintenanceStage is a site stage for the remove pipeline: no removal or
// demotion while the site facts say a maintenance window is active.
const maintenanceStage = `# METADATA
# title: Maintenance
# description: No removal or demotion while the site facts say that
#   maintenance is under way (site.maintenance.active is true).
package admitd.stages.maintenance

default allow := false

allow if count(deny) == 0

deny contains {"code": "MAINTENANCE_WINDOW", "message": msg} if {
	input.phase == "remove"
	input.site.maintenance.active == true
	msg := sprintf("maintenance is under way (site.maintenance.active): no %v of %v until it ends", [input.change, input.candidate.id])
}
`

// maintenancePolicies copies the shipped policies, adds the maintenance
// stage and appends it to remove_stages.
func maintenancePolicies(t *testing.T) string {
	t.Helper()
	// The shipped catch-up default; these clusters add voters directly.
	dir := stagedPolicies(t, 10000)
	file := filepath.Join(dir, "pipeline.rego")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rule := `remove_stages := ["topology", "maintenance"]`
	re := regexp.MustCompile(`(?m)^remove_stages\s*:=\s*\[[^\]]*\]`)
	if re.Match(src) {
		src = re.ReplaceAll(src, []byte(rule))
	} else {
		src = append(src, "\n"+rule+"\n"...)
	}
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maintenance.rego"), []byte(maintenanceStage), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// decisionLogEvent waits until path holds the decision-log event of
// decision id and returns it.
func decisionLogEvent(t *testing.T, path, id string) map[string]any {
	t.Helper()
	var ev map[string]any
	eventually(t, "decision "+id+" in "+path, func() (bool, string) {
		f, err := os.Open(path)
		if err != nil {
			return false, err.Error()
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		lines := 0
		for sc.Scan() {
			lines++
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return false, fmt.Sprintf("line %d is not JSON: %v", lines, err)
			}
			if e["decision_id"] == id {
				ev = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d lines, none with the decision (%v)", lines, sc.Err())
	})
	return ev
}

// 2. A site stage refuses removals during maintenance. An override naming
// a code the decision does not carry lifts nothing; one naming
// MAINTENANCE_WINDOW, with a reason, removes the member, and the decision
// log keeps the reason and the overridden deny.
func TestRemovalMaintenanceWindowOverride(t *testing.T) {
	t.Parallel()
	policies := maintenancePolicies(t)
	site := filepath.Join(t.TempDir(), "site.json")
	if err := os.WriteFile(site, []byte(`{"maintenance": {"active": true}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := map[string]string{}
	nodes := clusterOf(t, func(id string) opts {
		logs[id] = filepath.Join(t.TempDir(), id+"-decisions.jsonl")
		return opts{id: id, extra: []string{"--policies", policies, "--site-facts", site, "--decision-log", logs[id]}}
	})
	leader := waitLeader(t, nodes...)
	target := others(nodes, leader)[0]
	before := waitVoters(t, leader, 3)

	r := changeMember(t, leader, target.id, false, nil)
	var doc struct {
		Site map[string]any `json:"site"`
	}
	if err := json.Unmarshal(r.decision.Facts, &doc); err != nil || doc.Site == nil {
		t.Errorf("the removal's facts carry no site facts (input.site; --site-facts %s), err %v: %s", site, err, r.decision.Facts)
	}
	requireRefused(t, r.admitResult, "maintenance", "MAINTENANCE_WINDOW", false)
	if r.extras.Override != nil {
		t.Errorf("a removal without an override records one: %+v", r.extras.Override)
	}
	sameConfig(t, "after the maintenance deny", before, mustCluster(t, leader))

	r = changeMember(t, leader, target.id, false, map[string]any{
		"override": map[string]any{"codes": []string{"NOT_A_CODE_HERE"}, "reason": "x"}})
	requireRefused(t, r.admitResult, "maintenance", "MAINTENANCE_WINDOW", false)
	if o := r.extras.Override; o == nil || !slices.Equal(o.Codes, []string{"NOT_A_CODE_HERE"}) || len(o.Denies) != 0 {
		t.Errorf("override of a code the decision does not carry: record %+v, want the code and no denies lifted", o)
	}
	if got := r.extras.overridden("maintenance"); len(got) != 0 {
		t.Errorf("maintenance overridden %v under an override naming none of its codes", got)
	}
	sameConfig(t, "after the override of an absent code", before, mustCluster(t, leader))

	r = changeMember(t, leader, target.id, false, map[string]any{
		"override": map[string]any{"codes": []string{"MAINTENANCE_WINDOW"}, "reason": "replacing a disk"}})
	requireRemoved(t, r, target.id)
	if got := r.extras.overridden("maintenance"); !slices.Equal(got, []string{"MAINTENANCE_WINDOW"}) {
		t.Errorf("maintenance overridden %v, want [MAINTENANCE_WINDOW]", got)
	}
	o := r.extras.Override
	if o == nil || o.Reason != "replacing a disk" || len(o.Denies) != 1 || o.Denies[0].Code != "MAINTENANCE_WINDOW" {
		t.Fatalf("override record %+v, want the reason and the MAINTENANCE_WINDOW deny", o)
	}
	after := mustCluster(t, leader)
	if after.suffrage(target.id) != "" {
		t.Fatalf("%s still in the configuration as %q", target.id, after.suffrage(target.id))
	}

	// The decider's decision log holds the decision, override included.
	decider := byID(t, nodes, r.decision.DecidedBy)
	ev := decisionLogEvent(t, logs[decider.id], r.decision.DecisionID)
	res, _ := ev["result"].(map[string]any)
	ov, _ := res["override"].(map[string]any)
	if ov == nil || ov["reason"] != "replacing a disk" {
		t.Fatalf("decision-log event's result.override is %v, want the reason \"replacing a disk\"; result: %v", res["override"], res)
	}
	denies, _ := ov["denies"].([]any)
	var codes []string
	for _, d := range denies {
		if m, ok := d.(map[string]any); ok {
			codes = append(codes, fmt.Sprint(m["code"]))
		}
	}
	if !slices.Equal(codes, []string{"MAINTENANCE_WINDOW"}) {
		t.Errorf("decision-log override denies %v, want [MAINTENANCE_WINDOW]", codes)
	}
	if res["allowed"] != true {
		t.Errorf("decision-log result.allowed is %v, want true", res["allowed"])
	}
}

// decisionsOf reads up to limit recent decisions kept by n.
func decisionsOf(n *node, limit int) ([]decision, error) {
	var out struct {
		Decisions []decision `json:"decisions"`
	}
	err := getJSON(fmt.Sprintf("%s/v1/decisions?limit=%d", n.url, limit), &out)
	return out.Decisions, err
}

// 3. A demoted voter is staged under the demote decision's id, and the
// leader's promoter makes it a voter again once it is caught up and
// stable, under that admission id.
func TestRemovalDemoteThenPromoted(t *testing.T) {
	t.Parallel()
	policies := stagedPolicies(t, 2000)
	nodes := clusterOf(t, func(id string) opts {
		// The later --promote-interval wins over stagedOpts' own.
		return stagedOpts(id, policies, 2*time.Minute, "--promote-interval", "200ms")
	})
	leader := waitLeader(t, nodes...)
	target := byID(t, nodes, "n3")
	if target == leader {
		target = byID(t, nodes, "n2")
	}
	before := waitVoters(t, leader, 3)
	stop := make(chan struct{})
	watched := watchVoters(t, leader, target.id, stop)

	r, d := changeCLI(t, "demote", "--server", leader.url, "--id", target.id, "-o", "json")
	if r.code != 0 || !d.Allowed || d.Applied == nil || d.Applied.Suffrage != "nonvoter" || d.Applied.Index == 0 || d.DecisionID == "" {
		close(stop)
		t.Fatalf("admitd demote: exit %d, decision %+v\nstdout: %s\nstderr: %s", r.code, d, r.stdout, r.stderr)
	}
	if d.Phase != "remove" || d.Candidate.ID != target.id {
		t.Errorf("demote decision phase %q candidate %q, want remove and %s", d.Phase, d.Candidate.ID, target.id)
	}
	if c := mustCluster(t, leader); c.suffrage(target.id) == "nonvoter" {
		if !slices.Contains(c.Staged, target.id) {
			t.Errorf("demoted %s is a non-voter but not staged: staged %v", target.id, c.Staged)
		}
	} else if c.suffrage(target.id) != "voter" || c.ConfigIndex <= before.ConfigIndex {
		// A voter here means the promoter was faster than this read, which
		// the watcher below still catches.
		t.Errorf("after the demotion %s is %q at config index %d (was %d)", target.id, c.suffrage(target.id), c.ConfigIndex, before.ConfigIndex)
	}

	waitCluster(t, leader, 3, func(c cluster) bool { return c.suffrage(target.id) == "voter" && len(c.voters()) == 3 })
	close(stop)
	maxBefore, sawNonvoter := watched()
	if !sawNonvoter {
		t.Errorf("the configuration never showed %s as a non-voter", target.id)
	}
	if maxBefore > 2 {
		t.Errorf("%d voters seen while %s had no vote, want 2", maxBefore, target.id)
	}

	// The promotion is recorded by the leader that made it, under the
	// demote decision's id.
	var found decision
	eventually(t, "a promote decision for "+target.id+" under admission "+d.DecisionID, func() (bool, string) {
		var seen []string
		for _, n := range nodes {
			ds, err := decisionsOf(n, 256)
			if err != nil {
				seen = append(seen, err.Error())
				continue
			}
			for _, x := range ds {
				if x.Phase == "promote" && x.Candidate.ID == target.id && x.Applied != nil {
					if x.AdmissionID == d.DecisionID && x.Applied.Suffrage == "voter" {
						found = x
						return true, ""
					}
					seen = append(seen, fmt.Sprintf("%s: admission %s applied %+v", n.id, x.AdmissionID, *x.Applied))
				}
			}
		}
		return false, fmt.Sprint(seen)
	})
	if !found.Allowed {
		t.Errorf("promote decision %s applied but not allowed", found.DecisionID)
	}
}

// 4. The CLI prints the decision and exits 3 on a deny: removing the
// leader, and removing an id that is not a member. A dry run decides and
// changes nothing.
func TestRemovalCLI(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2", "n3")
	leader := waitLeader(t, nodes...)
	follower := others(nodes, leader)[0]
	before := waitVoters(t, leader, 3)

	// Sent to a follower, which forwards it to the leader.
	r, _ := changeCLI(t, "remove", "--server", follower.url, "--id", leader.id)
	if r.code != 3 || !strings.Contains(r.stdout, "REMOVES_LEADER") {
		t.Fatalf("admitd remove --id %s (the leader): exit %d, want 3 with REMOVES_LEADER\nstdout: %s\nstderr: %s", leader.id, r.code, r.stdout, r.stderr)
	}

	r, d := changeCLI(t, "remove", "--server", follower.url, "--id", "n9", "-o", "json")
	if r.code != 3 {
		t.Fatalf("admitd remove --id n9: exit %d, want 3\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	requireDenied(t, d, "topology", "NOT_A_MEMBER")
	if !strings.Contains(r.stdout, "NOT_A_MEMBER") {
		t.Errorf("admitd remove --id n9 does not print NOT_A_MEMBER: %s", r.stdout)
	}

	r, d = changeCLI(t, "remove", "--server", leader.url, "--id", follower.id, "--dry-run", "-o", "json")
	if r.code != 0 || !d.Allowed || d.Enforced || d.Removed != nil {
		t.Fatalf("admitd remove --dry-run --id %s: exit %d, allowed=%v enforced=%v removed=%+v\nstdout: %s\nstderr: %s",
			follower.id, r.code, d.Allowed, d.Enforced, d.Removed, r.stdout, r.stderr)
	}
	sameConfig(t, "after the refused and dry-run removals", before, mustCluster(t, leader))
}
