package server

import "github.com/admitd/admitd"

// StagingConfig says how candidates join: staged (a non-voter first,
// promoted by the gate once caught up) or directly as voters.
type StagingConfig = admitd.Staging
