package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/server"
)

// A candidate whose raft address answered the facts' handshakes and is gone
// at the add is denied on fresh facts, and the configuration is unchanged;
// the same node with its raft address up is then admitted.
func TestCandidateGoneBeforeAddIsDenied(t *testing.T) {
	const dials = 3
	leader := opsNode(t, "n1", true, func(c *server.Config) { c.Collect.RaftDialAttempts = dials })
	fresh := opsNode(t, "n2", false, nil)

	gone := make(chan struct{})
	c := fresh.candidate()
	// The dials, plus the raft probe, relayed to the real raft server.
	c.RaftAddr = relayThenClose(t, dials+1, fresh.node.Addr(), gone)
	// The API answers only once the raft listener is closed, so the facts
	// are complete (raft ok) before the check at the add runs.
	c.APIURL = gatedProxy(t, fresh.http.URL, gone)
	before := configIndex(t, leader)

	r := post(t, leader.http.URL+"/v1/admissions", admissionBody(c, false))
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden {
		t.Fatalf("want 403 and a decision, got %d %s", r.status, r.body)
	}
	if d.Allowed || d.Applied != nil || d.StoppedAt != "reachability" || d.Permanent {
		t.Fatalf("decision: allowed=%v applied=%+v stopped_at=%q permanent=%v, want a non-permanent deny at reachability: %s",
			d.Allowed, d.Applied, d.StoppedAt, d.Permanent, d.Reason)
	}
	if codes := stageCodes(d, "reachability"); !slices.Contains(codes, "RAFT_UNREACHABLE") {
		t.Errorf("reachability deny codes %v, want RAFT_UNREACHABLE", codes)
	}
	if after := configIndex(t, leader); after != before {
		t.Errorf("configuration index moved from %d to %d", before, after)
	}
	if _, present, err := leader.node.HasMember(context.Background(), "n2", ""); err != nil || present {
		t.Errorf("n2 in the configuration: %v %v", present, err)
	}
	if ids := decisionIDs(t, leader); len(ids) == 0 || ids[0] != d.DecisionID {
		t.Errorf("the deny %s is not the newest recorded decision: %v", d.DecisionID, ids)
	}

	c.RaftAddr = fresh.node.Addr()
	r = post(t, leader.http.URL+"/v1/admissions", admissionBody(c, false))
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.Applied == nil {
		t.Fatalf("with its raft address up: %d %s", r.status, r.body)
	}
}

// relayThenClose listens on 127.0.0.1, relays n connections to target, then closes
// the listener (later handshakes are refused) and closes done.
func relayThenClose(t *testing.T, n int, target string, done chan<- struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(done)
		defer ln.Close()
		for range n {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(t, conn, target)
		}
	}()
	return ln.Addr().String()
}

// relay copies conn to and from target until either side closes.
func relay(t *testing.T, conn net.Conn, target string) {
	defer conn.Close()
	up, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return
	}
	t.Cleanup(func() { up.Close() })
	go func() { _, _ = io.Copy(up, conn); up.Close() }()
	_, _ = io.Copy(conn, up)
}

// gatedProxy relays to target once gate is closed (bounded wait).
func gatedProxy(t *testing.T, target string, gate <-chan struct{}) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-time.After(5 * time.Second):
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func stageCodes(d admission.Decision, stage string) []string {
	var codes []string
	for _, s := range d.Stages {
		if s.Name == stage {
			for _, v := range s.Deny {
				codes = append(codes, v.Code)
			}
		}
	}
	return codes
}

func decisionIDs(t *testing.T, n *testNode) []string {
	t.Helper()
	var list struct {
		Decisions []admission.Decision `json:"decisions"`
	}
	if err := json.Unmarshal(do(t, http.MethodGet, n.http.URL+"/v1/decisions?limit=5", nil).body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list.Decisions {
		ids = append(ids, d.DecisionID)
	}
	return ids
}
