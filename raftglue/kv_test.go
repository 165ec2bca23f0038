package raftglue

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// kvFSM is the tests' application state: key/values written to give the
// log some weight and to see it replayed.
type kvFSM struct {
	mu sync.RWMutex
	m  map[string]string
}

type kvCommand struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newKVFSM() *kvFSM { return &kvFSM{m: map[string]string{}} }

func (f *kvFSM) Apply(l *raft.Log) any {
	var c kvCommand
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("raftglue: bad key/value command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	f.m[c.Key] = c.Value
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := json.Marshal(f.m)
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(data), nil
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return fmt.Errorf("raftglue: restore key/values: %w", err)
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) get(key string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.m[key]
	return v, ok
}

func (f *kvFSM) entries() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.m)
}

// put replicates key=value through n's log as an application command.
func put(n *Node, ctx context.Context, key, value string) error {
	data, err := json.Marshal(kvCommand{Key: key, Value: value})
	if err != nil {
		return err
	}
	return n.Apply(ctx, data)
}

// get reads key from n's application state.
func get(n *Node, key string) (string, bool) { return n.app.(*kvFSM).get(key) }

// entries is the number of distinct keys in n's application state.
func entries(n *Node) int { return n.app.(*kvFSM).entries() }
