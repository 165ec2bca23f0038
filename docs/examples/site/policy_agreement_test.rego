package admitd.stages.policy_agreement_test

import data.admitd.fixtures
import data.admitd.stages.policy_agreement as pa

revs(a, b) := json.patch(fixtures.good, [
	{"op": "add", "path": "/topology/servers/0/policy_revision", "value": a},
	{"op": "add", "path": "/topology/servers/1/policy_revision", "value": b},
])

test_same_revision_allowed if {
	pa.allow with input as revs("sha256:aa", "sha256:aa")
}

test_different_revisions_denied if {
	s := fixtures.summary(pa) with input as revs("sha256:aa", "sha256:bb")
	s == {"allow": false, "deny": {"POLICY_REVISIONS_DIFFER"}, "warn": set()}
}

# A missing revision is not "the same": it denies.
test_missing_revision_denied if {
	s := fixtures.summary(pa) with input as fixtures.good
	s == {"allow": false, "deny": {"POLICY_REVISION_UNKNOWN"}, "warn": set()}
}

test_unhealthy_voter_ignored if {
	facts := json.patch(revs("sha256:aa", "sha256:bb"), [{"op": "replace", "path": "/topology/servers/1/healthy", "value": false}])
	pa.allow with input as facts
}
