# METADATA
# title: Admission pipeline, with site stages
# description: |
#   The shipped stages, then this site's own: the candidate's network, the
#   maintenance window, and policy agreement across the voters. This file
#   replaces the shipped pipeline.rego in a site's policy directory.
package admitd.pipeline

# METADATA
# title: Stages
# description: The shipped stages must come first, in this order.
stages := [
	"reachability", "init_state", "topology",
	"site_cidr", "maintenance_window", "policy_agreement",
]

# METADATA
# title: Promote stages
# description: The shipped promote stages, in this order. Without them a
#   staged non-voter is never promoted. The site stages judge the joining
#   node at its admission and are not repeated here.
promote_stages := ["reachability", "catch_up", "topology"]

# METADATA
# title: Remove stages
# description: For removals and demotions, the shipped topology stage, then
#   the site's maintenance rule (see docs/policies.md, "Change kinds and who
#   judges what"). Without remove_stages every removal is refused.
remove_stages := ["topology", "maintenance"]

# METADATA
# title: Enforcement
# description: Per site stage, "deny" (the default) or "warn" (its denies
#   are reported as warnings and the pipeline goes on), as Gatekeeper's
#   enforcementAction. The shipped stages are always enforced.
enforcement := {
	"site_cidr": "deny",
	"maintenance_window": "deny",
	"policy_agreement": "deny",
}

# METADATA
# title: Permanent codes
# description: The shipped ones, plus the site's denies that waiting cannot change.
permanent_codes := {
	"ALREADY_INITIALIZED",
	"CANDIDATE_MALFORMED",
	"CANDIDATE_OUTSIDE_NETWORK",
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
