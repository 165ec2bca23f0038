package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// The bodies as clients outside Go read them: these shapes are the
// contract, whatever the Go types around them become.
func TestBodiesOnTheWire(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"error", ErrorBody{Error: Error{Code: "NO_LEADER", Message: "no leader"}},
			`{"error":{"code":"NO_LEADER","message":"no leader"}}`},
		{"admission request", AdmissionRequest{Candidate: facts.Candidate{ID: "n4", RaftAddr: "127.0.0.1:7431"}},
			`{"candidate":{"id":"n4","raft_addr":"127.0.0.1:7431"`},
		{"empty change request", ChangeRequest{}, `{}`},
		// The topology's fields are the view's own, beside "staging".
		{"cluster view", ClusterView{Topology: facts.Topology{ConfigIndex: 7}, Staging: []admission.StageProgress{}},
			`"config_index":7`},
		{"admission status", AdmissionStatus{AdmissionID: "a1", State: StatePromoted}, `{"admission_id":"a1","state":"promoted",`},
	}
	for _, c := range cases {
		raw, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), c.want) {
			t.Errorf("%s: %s, want it to hold %s", c.name, raw, c.want)
		}
	}
	var view map[string]json.RawMessage
	raw, _ := json.Marshal(ClusterView{Staging: []admission.StageProgress{}})
	if err := json.Unmarshal(raw, &view); err != nil {
		t.Fatal(err)
	}
	if _, nested := view["Topology"]; nested || string(view["staging"]) != "[]" || view["servers"] == nil {
		t.Errorf("cluster view %s: want the topology flat beside staging", raw)
	}
}
