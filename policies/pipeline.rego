# METADATA
# title: Admission pipeline
# description: |
#   The order in which admitd evaluates the stages: stages for an
#   admission, promote_stages for the promotion of a staged non-voter. Each
#   name is a package admitd.stages.<name>; the first stage that does not
#   pass ends the evaluation, and a name with no package is a deny
#   (STAGE_ERROR). Append site stages after the shipped ones.
package admitd.pipeline

# METADATA
# title: Stages
# description: Evaluation order. Reachability first (is the candidate there,
#   and, with TLS on, does its certificate name it?), then its init state (is
#   it fresh?), then the cluster topology (is it safe to add a voter now?).
stages := ["reachability", "init_state", "topology"]

# METADATA
# title: Promote stages
# description: Evaluation order for the promotion of a staged non-voter
#   (facts of phase "promote"). Reachability first (with TLS on, the
#   identity is proven again at every promotion), then its catch-up (has it
#   caught up with the leader and stayed healthy?), then the topology (is it
#   still the staged non-voter, and is one more voter still safe?).
promote_stages := ["reachability", "catch_up", "topology"]

# METADATA
# title: Permanent codes
# description: Denies that waiting cannot change. A joining node gives up at
#   once on these instead of retrying; every other deny (an unreachable or
#   unhealthy peer during cluster formation, a raft server not answering
#   yet) may pass later. Identity denies are permanent (another raft server
#   holds the candidate's address, RAFT_ID_MISMATCH; its API and its raft
#   server disagree, INIT_STATE_CONTRADICTION). None of the codes the staged
#   join adds is permanent (a candidate catches up, a staging slot frees,
#   and CANDIDATE_NOT_STAGED can be a stage record not yet committed), so
#   the caller's own deadline ends those retries.
permanent_codes := {
	"ALREADY_INITIALIZED",
	"CANDIDATE_MALFORMED",
	"DUPLICATE_ADDRESS",
	"DUPLICATE_ID",
	"EXISTING_RAFT_STATE",
	"IDENTITY_MISMATCH",
	"ID_TOMBSTONED",
	"INIT_STATE_CONTRADICTION",
	"NODE_ID_MISMATCH",
	"RAFT_ID_MISMATCH",
}
