# METADATA
# title: Policy agreement
# description: |
#   Refuses admissions while the healthy voters do not all report the same
#   policy revision (a policy rollout is in progress), or while one of them
#   reports none. The leader fills each member's topology.servers[_].policy_revision
#   from its /v1/state.
package admitd.stages.policy_agreement

# METADATA
# title: Allow
default allow := false

allow if {
	count(deny) == 0
	count(revisions) == 1
}

healthy_voters := [s |
	some s in input.topology.servers
	s.suffrage == "voter"
	s.healthy == true
]

known(s) if {
	is_string(s.policy_revision)
	s.policy_revision != ""
}

revisions contains s.policy_revision if {
	some s in healthy_voters
	known(s)
}

unknown contains sprintf("%v", [s.id]) if {
	some s in healthy_voters
	not known(s)
}

# METADATA
# title: Revisions differ
deny contains {"code": "POLICY_REVISIONS_DIFFER", "message": msg} if {
	count(revisions) > 1
	msg := sprintf(
		"the healthy voters run %d policy revisions (%s); finish the policy rollout on every node, then retry",
		[count(revisions), concat(", ", sort(revisions))],
	)
}

# METADATA
# title: Revision unknown
deny contains {"code": "POLICY_REVISION_UNKNOWN", "message": msg} if {
	count(unknown) > 0
	msg := sprintf("voters %s report no policy revision; check they run admitd with policies", [concat(", ", sort(unknown))])
}

# METADATA
# title: No healthy voters
deny contains {"code": "POLICY_REVISION_UNKNOWN", "message": msg} if {
	count(healthy_voters) == 0
	msg := "no healthy voter in the topology to compare policy revisions with"
}
