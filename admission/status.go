package admission

import (
	"time"

	"github.com/admitd/admitd/facts"
)

// State is where an admission stands.
type State string

// Admission states, as GET /v1/admissions/{id} reports them.
const (
	StateStaged   State = "staged"   // a non-voter, waiting for promotion
	StatePromoted State = "promoted" // a voter, after a staged join
	StateAdmitted State = "admitted" // a voter, added directly
	StateRemoved  State = "removed"  // staged, then removed (deadline) or gone
	StateDenied   State = "denied"   // never added
)

// Status is where one admission stands, with its decisions (both phases,
// newest first) as the leader holds them.
type Status struct {
	AdmissionID string          `json:"admission_id"`
	State       State           `json:"state"`
	Candidate   facts.Candidate `json:"candidate"`
	Progress    *StageProgress  `json:"progress,omitempty"`
	Decisions   []*Decision     `json:"decisions"`
}

// StageProgress is a staged non-voter as the leader last saw it.
type StageProgress struct {
	ID          string          `json:"id"`
	AdmissionID string          `json:"admission_id"`
	Candidate   facts.Candidate `json:"candidate"`
	StagedAt    time.Time       `json:"staged_at"`
	Deadline    time.Time       `json:"deadline"`
	CheckedAt   time.Time       `json:"checked_at,omitzero"`
	CatchUp     *facts.CatchUp  `json:"catch_up,omitempty"`
	// DecisionID and Reason are the last promote decision's.
	DecisionID string `json:"decision_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Removal is the answer to DELETE /v1/members/{id}.
type Removal struct {
	ID          string `json:"id"`
	Removed     bool   `json:"removed"`
	Index       uint64 `json:"index"`
	ConfigIndex uint64 `json:"config_index"`
	Tombstoned  bool   `json:"tombstoned"`
	DecidedBy   string `json:"decided_by"`
}
