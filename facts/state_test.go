package facts

import (
	"bytes"
	"strings"
	"testing"
)

const validState = `{"node_id":"n4","raft_addr":"127.0.0.1:7431","api_url":"http://127.0.0.1:7430",` +
	`"initialized":true,"cluster_id":"c1","last_index":9,"last_term":3,"term":3,"last_contact_ms":12.5,"raft_state":"Follower",` +
	`"leader_id":"n1","version":"0.1.0","policy_revision":"sha256:x"}`

func TestParseNodeState(t *testing.T) {
	st, err := ParseNodeState(strings.NewReader(validState), 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeState{NodeID: "n4", RaftAddr: "127.0.0.1:7431", APIURL: "http://127.0.0.1:7430", Initialized: true,
		ClusterID: "c1", LastIndex: 9, LastTerm: 3, Term: 3, LastContactMS: 12.5, RaftState: "Follower", LeaderID: "n1",
		Version: "0.1.0", PolicyRevision: "sha256:x"}
	if st != want {
		t.Fatalf("got %+v", st)
	}
	// A node that does not report its last contact reads as never in
	// contact, which no promote policy accepts.
	old, err := ParseNodeState(strings.NewReader(strings.Replace(validState, `"last_contact_ms":12.5,`, "", 1)), 1024)
	if err != nil || old.LastContactMS != -1 {
		t.Fatalf("without last_contact_ms: %+v, %v; want -1", old, err)
	}
	if _, err := ParseNodeState(strings.NewReader(`{"future_field":[1,2],`+validState[1:]), 1024); err != nil {
		t.Fatalf("unknown field rejected: %v", err)
	}
}

func TestParseNodeStateRejects(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"empty", "", "empty"},
		{"not json", "hello", "invalid JSON"},
		{"array", "[]", "want"},
		{"null", "null", "missing or null"},
		{"empty object", "{}", "missing or null: node_id, initialized, cluster_id, last_index, last_term"},
		{"null field", strings.Replace(validState, `"initialized":true`, `"initialized":null`, 1), "initialized"},
		{"string bool", strings.Replace(validState, `"initialized":true`, `"initialized":"true"`, 1), "initialized"},
		{"float index", strings.Replace(validState, `"last_index":9`, `"last_index":9.5`, 1), "last_index"},
		{"overflow", strings.Replace(validState, `"last_term":3`, `"last_term":18446744073709551616`, 1), "last_term"},
		{"string term", strings.Replace(validState, `"term":3`, `"term":"3"`, 1), "term"},
		{"bad node id", strings.Replace(validState, `"node_id":"n4"`, `"node_id":"n 4"`, 1), "node_id"},
		{"empty node id", strings.Replace(validState, `"node_id":"n4"`, `"node_id":""`, 1), "node_id"},
		{"trailing", validState + "{}", "after the JSON"},
		{"truncated", validState[:40], "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNodeState(strings.NewReader(tc.body), 1024)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestParseNodeStateLimit(t *testing.T) {
	if _, err := ParseNodeState(strings.NewReader(validState), int64(len(validState))); err != nil {
		t.Fatalf("exactly max: %v", err)
	}
	_, err := ParseNodeState(strings.NewReader(validState), int64(len(validState)-1))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err %v", err)
	}
	// A reader far larger than the limit is not read to the end.
	r := &countingReader{}
	if _, err := ParseNodeState(r, 1024); err == nil || r.n > 1025 {
		t.Fatalf("read %d bytes, err %v", r.n, err)
	}
}

// countingReader is an endless stream of spaces that records what was read.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	c.n += len(p)
	return len(p), nil
}

func FuzzParseNodeState(f *testing.F) {
	f.Add([]byte(validState))
	f.Add([]byte("{}"))
	f.Add([]byte(`{"node_id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseNodeState(bytes.NewReader(data), DefaultMaxStateBytes)
		if err != nil {
			return
		}
		if ValidateID(st.NodeID) != nil {
			t.Fatalf("accepted invalid node_id %q", st.NodeID)
		}
	})
}
