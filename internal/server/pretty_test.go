package server_test

import (
	"bytes"
	"net/http"
	"testing"
)

func TestJSONCompactUnlessPretty(t *testing.T) {
	n := startNode(t, "n1", true)
	compact := do(t, http.MethodGet, n.http.URL+"/v1/state", nil)
	pretty := do(t, http.MethodGet, n.http.URL+"/v1/state?pretty", nil)
	if compact.status != http.StatusOK || pretty.status != http.StatusOK {
		t.Fatalf("status %d, %d", compact.status, pretty.status)
	}
	if bytes.Count(compact.body, []byte("\n")) != 1 || !bytes.HasPrefix(compact.body, []byte(`{"node_id":"n1"`)) {
		t.Errorf("want one compact line, got %s", compact.body)
	}
	if !bytes.HasPrefix(pretty.body, []byte("{\n  \"node_id\": \"n1\"")) {
		t.Errorf("want indented JSON, got %s", pretty.body)
	}
	// Errors follow the same rule.
	if r := do(t, http.MethodGet, n.http.URL+"/v1/nothing?pretty=1", nil); !bytes.Contains(r.body, []byte("{\n  \"error\": {")) {
		t.Errorf("want an indented error, got %s", r.body)
	}
}
