package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// store is the application's state machine: a map of strings that only
// committed raft entries change. It knows nothing of admitd; main wraps it
// with admitd.WrapFSM, which hands it exactly the entries it would see
// without the wrapper.
type store struct {
	mu sync.RWMutex
	m  map[string]string
}

// command is one log entry of this application.
type command struct {
	Op    string `json:"op"` // "set"
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newStore() *store { return &store{m: map[string]string{}} }

func (s *store) get(key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	return v, ok
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// Apply runs one committed command; its result is the ApplyFuture's Response.
func (s *store) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("entry %d: %w", l.Index, err)
	}
	switch c.Op {
	case "set":
		s.mu.Lock()
		s.m[c.Key] = c.Value
		s.mu.Unlock()
		return nil
	default:
		return fmt.Errorf("entry %d: unknown op %q", l.Index, c.Op)
	}
}

// Snapshot copies the map as JSON; raft persists it in the background.
func (s *store) Snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, err := json.Marshal(s.m)
	if err != nil {
		return nil, err
	}
	return snapshot(data), nil
}

// Restore replaces the map with a snapshot's.
func (s *store) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
	return nil
}

type snapshot []byte

func (sn snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(sn); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
