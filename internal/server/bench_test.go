package server_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/raftglue"
)

// benchNode is startNode for benchmarks: a raft node with its API served
// on 127.0.0.1, stopped when the benchmark ends.
func benchNode(b *testing.B, id string, bootstrap bool) (*raftglue.Node, *server.Server, string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	node, err := raftglue.Open(raftglue.Config{
		ID: id, RaftAddr: "127.0.0.1:0", APIURL: url, DataDir: b.TempDir(),
		HeartbeatTimeout: server.TestHeartbeatTimeout, ElectionTimeout: server.TestElectionTimeout,
		LeaderLeaseTimeout: server.TestLeaderLeaseTimeout, CommitTimeout: server.TestCommitTimeout,
	})
	if err != nil {
		b.Fatal(err)
	}
	e, err := admission.Load(context.Background(), admission.DirSource("../../policies"))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Node: node, Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	hs := &http.Server{Handler: srv.Handler()}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() {
		_ = hs.Close()
		_ = node.Shutdown()
	})
	if bootstrap {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Bootstrap(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return node, srv, url
}

// BenchmarkEvaluateHandler is POST /v1/evaluate without the network:
// decoding, evaluation, recording and encoding the decision.
func BenchmarkEvaluateHandler(b *testing.B) {
	_, srv, _ := benchNode(b, "n1", true)
	body, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/evaluate", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkDryRunAdmission is a dry-run admission of a live candidate on a
// one-node cluster: real fact collection over loopback, evaluation and
// recording, without the HTTP framing of the admission request itself.
func BenchmarkDryRunAdmission(b *testing.B) {
	_, srv, _ := benchNode(b, "n1", true)
	cand, _, candURL := benchNode(b, "n2", false)
	req := api.AdmissionRequest{
		Candidate: facts.Candidate{ID: cand.ID(), RaftAddr: cand.Addr(), APIURL: candURL},
		DryRun:    true,
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := srv.Admit(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if !d.Allowed {
			b.Fatalf("denied: %s", d.Reason)
		}
	}
}
