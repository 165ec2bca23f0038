package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/admitd/admitd/facts"
)

// FillRequest is the body of POST /v1/debug/fill: replicate Entries
// key/values of ValueBytes each, then snapshot if asked, so a test can
// give a joining node a real log (or snapshot) to catch up on.
type FillRequest struct {
	Entries    int  `json:"entries"`
	ValueBytes int  `json:"value_bytes"`
	Snapshot   bool `json:"snapshot"`
}

// Fill bounds.
const (
	maxFillEntries    = 100_000
	maxFillValueBytes = 64 << 10
	fillWorkers       = 16
)

func (s *Server) handleFill(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req FillRequest
	if err := facts.StrictUnmarshal(body, &req); err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if req.Entries < 1 || req.Entries > maxFillEntries || req.ValueBytes < 0 || req.ValueBytes > maxFillValueBytes {
		writeError(w, fmt.Errorf("%w: entries must be 1..%d and value_bytes 0..%d", ErrBadRequest, maxFillEntries, maxFillValueBytes))
		return
	}
	if !s.node.IsLeader() {
		s.forward(w, r, body)
		return
	}
	written, err := s.fill(r.Context(), req)
	if err == nil && req.Snapshot {
		err = s.node.Snapshot()
	}
	if err != nil {
		writeError(w, fmt.Errorf("after %d entries: %w", written, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": written, "last_index": s.node.LastIndex()})
}

// fill writes the entries from a few workers at once, so raft batches them.
func (s *Server) fill(ctx context.Context, req FillRequest) (int64, error) {
	value := []byte(strings.Repeat("x", req.ValueBytes))
	var next, written atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range fillWorkers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(req.Entries); i = next.Add(1) {
				if err := s.node.Apply(ctx, value); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	return written.Load(), firstErr
}
