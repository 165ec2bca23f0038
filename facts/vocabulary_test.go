package facts

import (
	"encoding/json"
	"strings"
	"testing"
)

// Phase and Suffrage are their own types so that a function taking a phase
// cannot be handed a suffrage, an id or a change kind: the compiler refuses
// it, which no test can show. What a test can show is the other half of
// the bargain: on the wire they are the plain strings the schema and the
// policies spell, in both directions.
func TestPhaseAndSuffrageAreStringsOnTheWire(t *testing.T) {
	doc := Document{Schema: Schema, Phase: PhasePromote, Topology: &Topology{Servers: []Server{
		{ID: "n1", Suffrage: Voter}, {ID: "n2", Suffrage: Nonvoter},
	}}}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var plain struct {
		Phase    string `json:"phase"`
		Topology struct {
			Servers []struct {
				Suffrage string `json:"suffrage"`
			} `json:"servers"`
		} `json:"topology"`
	}
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatal(err)
	}
	if plain.Phase != "promote" || len(plain.Topology.Servers) != 2 ||
		plain.Topology.Servers[0].Suffrage != "voter" || plain.Topology.Servers[1].Suffrage != "nonvoter" {
		t.Fatalf("typed fields changed the JSON: %s", raw)
	}
	var back Document
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Phase != PhasePromote || back.Topology.Servers[0].Suffrage != Voter || back.Topology.Servers[1].Suffrage != Nonvoter {
		t.Fatalf("decoded %+v", back)
	}

	// A typed string still holds any string JSON gives it: Decode is what
	// refuses a phase that is none of the three.
	for _, p := range []Phase{"", PhaseAdmit, PhasePromote, PhaseRemove, "promotion"} {
		d := Document{Schema: Schema, Phase: p, Candidate: Candidate{ID: "n4", RaftAddr: "127.0.0.1:7431", APIURL: "http://127.0.0.1:7430"}}
		raw, _ := json.Marshal(d)
		_, err := DecodeBytes(raw)
		if known := p != "promotion"; known && err != nil || !known && (err == nil || !strings.Contains(err.Error(), "phase")) {
			t.Errorf("phase %q: Decode error %v", p, err)
		}
	}
}
