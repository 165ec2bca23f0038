// Package admitd is the admission gate for the membership of a
// hashicorp/raft cluster, embedded in the application that runs raft. The
// host wraps its FSM with WrapFSM, builds raft as usual, and builds a Gate
// over it with New; the Gate's Admit, on the leader, collects facts about
// the candidate and the cluster under deadlines, evaluates the policy
// stages in order, and only on an allow adds the candidate (a non-voter
// first, promoted once caught up, when staged) with the configuration
// index the facts were read at. The host keeps its FSM, stores and
// transport; admitd's own replicated state travels in the host's log,
// told apart by raft's Log.Extensions.
package admitd

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/raftglue"
)

// Raft is the part of *raft.Raft the gate uses; it never reads the host's
// LeaderCh or NotifyCh.
type Raft = raftglue.RaftAPI

var _ Raft = (*raft.Raft)(nil)

// FSM wraps the host's raft.FSM; it is what the host passes to raft.NewRaft.
type FSM = raftglue.FSM

// WrapFSM wraps the host's FSM. The host FSM sees exactly the entries it
// would see without the wrapper, in the same order, and a snapshot it took
// before the wrapper was added still restores.
func WrapFSM(host raft.FSM) *FSM { return raftglue.WrapFSM(host) }

// Candidate names the server asking to join: the facts document's candidate.
type Candidate = facts.Candidate

// Decision is the outcome of one admission, with every stage and the facts.
type Decision = admission.Decision

// Errors.
var (
	// ErrNotLeader: the call needs the leader. The error is a
	// *NotLeaderError naming the leader, when known.
	ErrNotLeader = raftglue.ErrNotLeader
	// ErrBadCandidate: the candidate has no valid id or raft address.
	ErrBadCandidate = errors.New("admitd: bad candidate")
	// ErrKeptChanging: the configuration changed under every attempt.
	ErrKeptChanging = errors.New("admitd: the configuration kept changing")
	// ErrOutcomeUnknown: a change was asked for and nobody can tell yet
	// whether it committed; read the configuration before asking again.
	ErrOutcomeUnknown = errors.New("admitd: the change may or may not have been applied")
	// ErrLeadershipLost: leadership moved during the change; it may have
	// committed (ErrOutcomeUnknown says when nobody can tell).
	ErrLeadershipLost = raftglue.ErrLeadershipLost
	// ErrTimeout: the deadline passed while raft worked on the change.
	ErrTimeout = raftglue.ErrTimeout
	// ErrWrongFSM: raft was given another FSM than the wrapper from WrapFSM.
	ErrWrongFSM = raftglue.ErrWrongFSM
	// ErrClosed: the gate was closed.
	ErrClosed = errors.New("admitd: gate closed")
)

// NotLeaderError says who leads, as far as this server knows.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "admitd: not the leader, and no leader is known"
	}
	return fmt.Sprintf("admitd: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
