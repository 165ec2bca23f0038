// Package api declares the bodies of admitd's HTTP API: what
// internal/server encodes and internal/client decodes; docs/api.md
// describes them.
//
// Decisions are admission.Decision and GET /v1/state answers a
// facts.NodeState; this package does not copy them. The path of
// /v1/state stays facts.StatePath: the facts collector itself calls it on
// candidates and members, and this package imports facts, so facts cannot
// import it.
package api

import (
	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// Paths that internal/server routes and internal/client calls.
const (
	// AdmissionsPath: POST an AdmissionRequest, answered with a decision;
	// GET AdmissionsPath/{id} answers an AdmissionStatus.
	AdmissionsPath = "/v1/admissions"
	// ClusterPath: GET answers a ClusterView.
	ClusterPath = "/v1/cluster"
	// MembersPath: DELETE MembersPath/{id} removes a member, POST
	// MembersPath/{id}/demote makes a voter a non-voter; both take an
	// optional ChangeRequest and answer a decision.
	MembersPath = "/v1/members"
	// TombstonesPath: DELETE TombstonesPath/{id} lets a removed id be
	// admitted again.
	TombstonesPath = "/v1/tombstones"
)

// AdmissionRequest is the body of POST /v1/admissions.
type AdmissionRequest struct {
	Candidate facts.Candidate `json:"candidate"`
	DryRun    bool            `json:"dry_run"`
	// Explain asks for the rules that fired or failed in each evaluated
	// stage (costly: only when asked).
	Explain bool `json:"explain,omitempty"`
}

// ChangeRequest is the optional body of DELETE /v1/members/{id} and
// POST /v1/members/{id}/demote.
type ChangeRequest struct {
	DryRun   bool                `json:"dry_run,omitempty"`
	Explain  bool                `json:"explain,omitempty"`
	Override *admission.Override `json:"override,omitempty"`
}

// ClusterView is the answer to GET /v1/cluster: the topology as the
// leader collects it, and the progress of the staged non-voters.
type ClusterView struct {
	facts.Topology
	Staging []admission.StageProgress `json:"staging"`
}

// State is where an admission stands, as AdmissionStatus reports it. It
// is no node's raft state (that is facts.NodeState.RaftState).
type State string

// Admission states.
const (
	StateStaged   State = "staged"   // a non-voter, waiting for promotion
	StatePromoted State = "promoted" // a voter, after a staged join
	StateAdmitted State = "admitted" // a voter, added directly
	StateRemoved  State = "removed"  // staged, then removed (deadline) or gone
	StateDenied   State = "denied"   // never added
)

// AdmissionStatus is the answer to GET /v1/admissions/{id}: where one
// admission stands, with its decisions (both phases, newest first) as the
// leader holds them.
type AdmissionStatus struct {
	AdmissionID string                   `json:"admission_id"`
	State       State                    `json:"state"`
	Candidate   facts.Candidate          `json:"candidate"`
	Progress    *admission.StageProgress `json:"progress,omitempty"`
	Decisions   []*admission.Decision    `json:"decisions"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is what went wrong: a stable Code (BAD_REQUEST, NO_LEADER,
// OUTCOME_UNKNOWN, ...) and a Message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
