# METADATA
# title: Admission pipeline
# description: |
#   The order in which admitd evaluates the stages: stages for an
#   admission, promote_stages for the promotion of a staged non-voter,
#   remove_stages for the removal or the demotion of a member. Each
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
# title: Remove stages
# description: Evaluation order for the removal of a member or the
#   demotion of a voter (facts of phase "remove", change "remove" or
#   "demote"). The topology alone (is it a member other than the leader and
#   the last voter, and do enough healthy voters remain?); the member is not
#   asked anything, since removing a dead member is the common case. Site
#   stages may follow it.
remove_stages := ["topology"]

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
#   the caller's own deadline ends those retries. A removal gives up at once
#   when the member is not in the configuration (NOT_A_MEMBER), is the
#   leader (REMOVES_LEADER, asked of the new leader after a transfer), is
#   the only voter (LAST_VOTER), or is no voter to demote (NOT_A_VOTER);
#   its QUORUM_UNSAFE, like a promotion's CANDIDATE_UNHEALTHY, may pass.
permanent_codes := {
	"ALREADY_INITIALIZED",
	"CANDIDATE_MALFORMED",
	"DUPLICATE_ADDRESS",
	"DUPLICATE_ID",
	"EXISTING_RAFT_STATE",
	"IDENTITY_MISMATCH",
	"ID_TOMBSTONED",
	"INIT_STATE_CONTRADICTION",
	"LAST_VOTER",
	"NODE_ID_MISMATCH",
	"NOT_A_MEMBER",
	"NOT_A_VOTER",
	"RAFT_ID_MISMATCH",
	"REMOVES_LEADER",
}
