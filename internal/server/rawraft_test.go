package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// A candidate without api_url is admitted on its raft server's answer: the
// leader calls no /v1/admitted (there is nothing to call) and the fence of
// an admitd node, which lets the raft probe through, stays its own affair.
func TestAdmissionWithoutAPIURL(t *testing.T) {
	leader := opsNode(t, "n1", true, nil)
	fresh := opsNode(t, "n2", false, nil) // no fence: a bare raft server as far as the leader knows
	c := facts.Candidate{ID: "n2", RaftAddr: fresh.node.Addr()}

	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(c, false))
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.Applied == nil {
		t.Fatalf("want 200 applied, got %d %s", r.status, r.body)
	}
	var doc facts.Document
	if err := json.Unmarshal(d.Facts, &doc); err != nil || doc.InitState == nil {
		t.Fatalf("facts: %v", err)
	}
	if got := doc.InitState.Sources; len(got) != 1 || got[0] != facts.SourceRaft || !doc.Reachability.API.Skipped {
		t.Errorf("sources %v, api skipped %v: want raft alone", got, doc.Reachability.API.Skipped)
	}
	if _, present, err := leader.node.HasMember(context.Background(), "n2", fresh.node.Addr()); err != nil || !present {
		t.Errorf("n2 not in the configuration: %v %v", present, err)
	}
}
