package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// statusJSON is what `admitd status -o json` prints.
type statusJSON struct {
	Node    nodeState `json:"node"`
	Cluster cluster   `json:"cluster"`
}

// A script starts a cluster and goes on at each step once
// `admitd status --wait-voters N` returns: n1 from a configuration file
// (bootstrap in the file, its id overridden by --id), waited for at once,
// before it listens; then n2 and n3 with --join, staged one at a time.
// Once the wait for 3 returns, all three are healthy voters, nothing is
// staged, and the next join is not refused STAGING_FULL.
func TestStatusWaitVoters(t *testing.T) {
	policies := stagedPolicies(t, 2000)
	cfg := filepath.Join(t.TempDir(), "n1.yaml")
	file := fmt.Sprintf("id: not-this-one\nbootstrap: true\npolicies: %s\npromote-interval: 250ms\npromote-deadline: 5m\n", policies)
	if err := os.WriteFile(cfg, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	n1 := startNode(t, opts{id: "n1", staged: true, extra: []string{"--config", cfg}})

	r, elapsed := timedCLI(t, "status", "--server", n1.url, "--wait-voters", "1", "--timeout", "45s", "-o", "json")
	t.Logf("status --wait-voters 1 right after the start: exit %d after %s; stderr:\n%s", r.code, elapsed, r.stderr)
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil {
		t.Fatalf("status --wait-voters 1: exit %d, %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	if st.Node.NodeID != "n1" || !slices.Equal(st.Cluster.voters(), []string{"n1"}) {
		t.Fatalf("after the wait: node %q, voters %v; want n1 (the flag over the file's id) as the one voter", st.Node.NodeID, st.Cluster.voters())
	}

	firstHourNode(t, "n2", policies, false, n1.url)
	firstHourNode(t, "n3", policies, false, n1.url)
	p := startCLI(t, "status", "--server", n1.url, "--wait-voters", "3", "--timeout", "100s")
	r, elapsed = p.wait()
	t.Logf("status --wait-voters 3: exit %d after %s; stderr:\n%s", r.code, elapsed, r.stderr)
	if r.code != 0 || !strings.Contains(r.stderr, "waiting for 3 voters: ") {
		t.Fatalf("status --wait-voters 3: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if !strings.Contains(r.stdout, id+"  ") {
			t.Errorf("the status printed after the wait lacks %s:\n%s", id, r.stdout)
		}
	}
	// No wait from here on: the wait promised a whole cluster.
	c, err := n1.cluster()
	if err != nil {
		t.Fatalf("GET /v1/cluster right after the wait: %v", err)
	}
	if v := c.voters(); !slices.Equal(v, []string{"n1", "n2", "n3"}) || c.healthyVoters() != 3 || len(c.Staged) != 0 || len(c.Staging) != 0 {
		t.Fatalf("right after the wait: voters %v (%d healthy), staged %v %+v; want n1 n2 n3 healthy, nothing staged",
			v, c.healthyVoters(), c.Staged, c.Staging)
	}

	// Five voters will not come: exit 1 within about --timeout, naming
	// what is missing.
	r, elapsed = timedCLI(t, "status", "--server", n1.url, "--wait-voters", "5", "--timeout", "3s")
	t.Logf("status --wait-voters 5 --timeout 3s: exit %d after %s; stderr:\n%s", r.code, elapsed, r.stderr)
	want := "admitd: --wait-voters 5: not reached within 3s: 3 of 5 voters (n1, n2, n3)"
	if r.code != 1 || !strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Fatalf("status --wait-voters 5 --timeout 3s: exit %d, want 1 with %q\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	if elapsed < 2500*time.Millisecond || elapsed > 30*time.Second {
		t.Fatalf("status --wait-voters 5 --timeout 3s took %s", elapsed)
	}

	// The next join finds the staging slot free.
	n4 := firstHourNode(t, "n4", policies, false, "")
	pollReady(t, n4)
	r, elapsed = timedCLI(t, joinArgs(n1.url, n4.candidate(), "-o", "json", "--no-wait")...)
	d := decodeDecision(t, r)
	if r.code != 0 || d.Applied == nil || d.Applied.Suffrage != "nonvoter" {
		t.Fatalf("join n4 after the wait: exit %d after %s, decision %+v; want it staged\nstderr: %s", r.code, elapsed, d, r.stderr)
	}
}
