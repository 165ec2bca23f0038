package render

import (
	"bytes"
	"strings"
	"testing"

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
	if err := Status(&buf, Table, facts.NodeState{NodeID: "n1"}, topo, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "nonvoter (staged)") {
		t.Fatalf("staged non-voter not marked:\n%s", out)
	}
	if strings.Count(out, "(staged)") != 1 {
		t.Fatalf("want exactly one staged mark:\n%s", out)
	}
}
