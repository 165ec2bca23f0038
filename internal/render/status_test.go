package render

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

func TestStatusMarksStagedServers(t *testing.T) {
	topo := facts.Topology{Section: facts.Section{Collected: true}, Leader: facts.Leader{ID: "n1"},
		Servers: []facts.Server{
			{ID: "n1", Address: "a1", Suffrage: facts.Voter, Healthy: true},
			{ID: "n4", Address: "a4", Suffrage: facts.Nonvoter, Healthy: true},
		},
		Staged: []string{"n4"}}
	var buf bytes.Buffer
	staging := []admission.StageProgress{{ID: "n4", AdmissionID: "a1", Deadline: time.Now().Add(time.Minute),
		CatchUp: &facts.CatchUp{Section: facts.Section{Collected: true}, Lag: 3, LastContactMS: 12, HealthyForMS: 2500},
		Reason:  "catch_up: NOT_STABLE: ..."}}
	if err := Status(&buf, Table, facts.NodeState{NodeID: "n1"}, topo, staging, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "nonvoter (staged)") {
		t.Fatalf("staged non-voter not marked:\n%s", out)
	}
	if strings.Count(out, "(staged)") != 1 {
		t.Fatalf("want exactly one staged mark:\n%s", out)
	}
	if !strings.Contains(out, "staged n4 (admission a1): deadline in ") ||
		!strings.Contains(out, "; lag 3 entries, last contact 12 ms, healthy 2.5 s; last decision: catch_up: NOT_STABLE") {
		t.Fatalf("no progress line:\n%s", out)
	}
}

// Members are listed by id, whatever order the joins raced into.
func TestStatusListsMembersByID(t *testing.T) {
	topo := facts.Topology{Section: facts.Section{Collected: true}, Leader: facts.Leader{ID: "n1"},
		Servers: []facts.Server{
			{ID: "n1", Address: "a1", Suffrage: facts.Voter},
			{ID: "n3", Address: "a3", Suffrage: facts.Voter},
			{ID: "n2", Address: "a2", Suffrage: facts.Voter},
		}}
	var buf bytes.Buffer
	if err := Status(&buf, Table, facts.NodeState{NodeID: "n1"}, topo, nil, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if i, j, k := strings.Index(out, "n1  a1"), strings.Index(out, "n2  a2"), strings.Index(out, "n3  a3"); i < 0 || !(i < j && j < k) {
		t.Fatalf("not by id:\n%s", out)
	}
	if topo.Servers[1].ID != "n3" {
		t.Fatal("the caller's topology was reordered")
	}
}
