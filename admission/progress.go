package admission

import (
	"time"

	"github.com/admitd/admitd/facts"
)

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
