# Tests for the site pipeline. This file replaces the shipped
# pipeline_test.rego, which pins the shipped order.
package admitd.pipeline_test

import data.admitd.fixtures
import data.admitd.pipeline

# Good facts for this site: fixtures.good inside the maintenance window,
# with every voter on the same policy revision.
site_good := json.patch(fixtures.good, [
	{"op": "add", "path": "/site", "value": {"maintenance_window": {
		"start": "2026-11-25T18:00:00Z",
		"end": "2026-11-25T20:00:00Z",
	}}},
	{"op": "add", "path": "/topology/servers/0/policy_revision", "value": "sha256:aa"},
	{"op": "add", "path": "/topology/servers/1/policy_revision", "value": "sha256:aa"},
])

test_site_order if {
	array.slice(pipeline.stages, 0, 3) == ["reachability", "init_state", "topology"]
	array.slice(pipeline.stages, 3, 6) == ["site_cidr", "maintenance_window", "policy_agreement"]
}

test_good_facts_pass_every_stage if {
	every name in pipeline.stages {
		data.admitd.stages[name].allow with input as site_good
		count(data.admitd.stages[name].deny) == 0 with input as site_good
	}
}

test_every_stage_fails_closed_on_empty_facts if {
	every name in pipeline.stages {
		data.admitd.stages[name].allow == false with input as {}
		count(data.admitd.stages[name].deny) > 0 with input as {}
	}
}

test_site_stages_enforced if {
	every name in array.slice(pipeline.stages, 3, 6) {
		pipeline.enforcement[name] == "deny"
	}
}

test_permanent_codes if {
	"ALREADY_INITIALIZED" in pipeline.permanent_codes
	"CANDIDATE_OUTSIDE_NETWORK" in pipeline.permanent_codes
	not "OUTSIDE_MAINTENANCE_WINDOW" in pipeline.permanent_codes
	not "POLICY_REVISIONS_DIFFER" in pipeline.permanent_codes
	not "QUORUM_UNSAFE" in pipeline.permanent_codes
}

test_site_promote_order if {
	pipeline.promote_stages == ["reachability", "catch_up", "topology"]
}
