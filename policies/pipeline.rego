# METADATA
# title: Admission pipeline
# description: |
#   The order in which admitd evaluates the stages. Each name is a package
#   admitd.stages.<name>; the first stage that does not pass ends the
#   evaluation, and a name with no package is a deny (STAGE_ERROR).
#   Append site stages after the shipped ones.
package admitd.pipeline

# METADATA
# title: Stages
# description: Evaluation order. Reachability first (is the candidate there?),
#   then its init state (is it fresh?), then the cluster topology (is it safe
#   to add a voter now?).
stages := ["reachability", "init_state", "topology"]

# METADATA
# title: Permanent codes
# description: Denies that waiting cannot change. A joining node gives up at
#   once on these instead of retrying; every other deny (an unreachable or
#   unhealthy peer during cluster formation) may pass later.
permanent_codes := {
	"ALREADY_INITIALIZED",
	"CANDIDATE_MALFORMED",
	"DUPLICATE_ADDRESS",
	"DUPLICATE_ID",
	"EXISTING_RAFT_STATE",
	"IDENTITY_MISMATCH",
	"ID_TOMBSTONED",
	"NODE_ID_MISMATCH",
}
