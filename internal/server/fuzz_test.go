package server_test

import (
	"encoding/json"
	"testing"

	"github.com/admitd/admitd/internal/server"
)

// FuzzDecodeAdmissionRequest: decoding never panics, and an accepted
// request names a valid candidate other than this node and survives
// encoding and decoding again unchanged.
func FuzzDecodeAdmissionRequest(f *testing.F) {
	const selfID, selfRaft = "n1", "127.0.0.1:7401"
	for _, seed := range []string{
		`{"candidate": {"id": "n4", "raft_addr": "127.0.0.1:7431", "api_url": "http://127.0.0.1:7430"}, "dry_run": true}`,
		`{"candidate": {"id": "n4", "raft_addr": "[::1]:7431", "api_url": "https://[::1]:7430/"}}`,
		`{"candidate": {"id": "n1", "raft_addr": "127.0.0.1:7431", "api_url": "http://127.0.0.1:7430"}}`,
		`{"candidate": {"id": "n4", "raft_addr": "127.0.0.1:7401", "api_url": "http://127.0.0.1:7430"}}`,
		`{"candidate": {"id": "n4", "raft_addr": "127.0.0.1:7431", "api_url": "ftp://x"}, "force": true}`,
		`{"candidate": {"id": "n\u00004"}}`,
		`{"candidate": null, "dry_run": null}`,
		`{} {}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := server.DecodeAdmissionRequest(body, selfID, selfRaft)
		if err != nil {
			return
		}
		c := req.Candidate
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid candidate %+v: %v", c, err)
		}
		if c.ID == selfID || c.RaftAddr == selfRaft {
			t.Fatalf("accepted a candidate naming this node: %+v", c)
		}
		again, err := server.DecodeAdmissionRequest(mustMarshal(t, req), selfID, selfRaft)
		if err != nil || again != req {
			t.Fatalf("re-encoded request decodes to %+v, %v; want %+v", again, err, req)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
