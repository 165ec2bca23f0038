package raftglue

import (
	"io"

	"github.com/hashicorp/raft"
)

// noFSM is the application state of a node that has none: the daemon's
// only state is admitd's, in the wrapper. Entries given to Node.Apply are
// replicated and dropped.
type noFSM struct{}

func (noFSM) Apply(*raft.Log) any { return nil }

func (noFSM) Snapshot() (raft.FSMSnapshot, error) { return fsmSnapshot(nil), nil }

func (noFSM) Restore(rc io.ReadCloser) error { return rc.Close() }
