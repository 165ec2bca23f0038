package raftglue

import "errors"

var (
	// ErrNotGranted means AddVoter or AddNonvoter was handed a Grant that
	// admission.Evaluate did not issue; raft was not touched.
	ErrNotGranted = errors.New("raftglue: no valid admission grant")

	// ErrNoPrevIndex means a membership change was asked for with prevIndex 0,
	// which would make raft skip its stale-configuration check.
	ErrNoPrevIndex = errors.New("raftglue: membership change needs a non-zero configuration index")

	// ErrConfigChanged means the raft configuration changed after the facts
	// were collected; nothing was changed. Collect facts again and re-evaluate.
	ErrConfigChanged = errors.New("raftglue: configuration changed since the facts were collected")

	// ErrLeadershipLost means this node was not, or stopped being, the leader
	// (or raft shut down). A change may still have committed: check HasMember.
	ErrLeadershipLost = errors.New("raftglue: leadership lost")

	// ErrNotLeader means the operation needs the leader and this node is not
	// it. Errors from a membership change that wrap it also wrap ErrLeadershipLost.
	ErrNotLeader = errors.New("raftglue: not the leader")

	// ErrTimeout means the caller's context ended before raft answered. A change
	// may still commit: check HasMember before retrying.
	ErrTimeout = errors.New("raftglue: timed out waiting for raft")

	// ErrHasState means Bootstrap was refused because the node already has raft
	// state; restart normally instead.
	ErrHasState = errors.New("raftglue: node already has raft state")

	// ErrMetadataNotApplied means a membership change committed but the
	// follow-up FSM command (end of a stage, tombstone) failed. The change
	// itself stands; callers treat this as success with a warning.
	ErrMetadataNotApplied = errors.New("raftglue: membership changed but metadata not recorded")

	// ErrDataDirInUse means Open found DataDir locked by another running node.
	ErrDataDirInUse = errors.New("raftglue: data dir is in use by another node")
)
