# Tests for the topology stage. Each test derives its facts from
# fixtures.good and checks the whole outcome: allow, deny codes, warn codes.
package admitd.stages.topology_test

import data.admitd.fixtures

outcome(facts) := fixtures.summary(pkg) if {
	pkg := data.admitd.stages.topology with input as facts
}

messages(facts, kind, code) := fixtures.messages(pkg, kind, code) if {
	pkg := data.admitd.stages.topology with input as facts
}

# with_servers is good with the configuration replaced; the leader stays n1.
with_servers(servers) := fixtures.patched("/topology/servers", servers)

voter(id, healthy) := fixtures.voter(id, healthy)

nonvoter(id, healthy) := fixtures.nonvoter(id, healthy)

even := {"EVEN_VOTERS"}

# --- allow -------------------------------------------------------------------

test_healthy_two_voter_cluster_allowed if {
	outcome(fixtures.good) == fixtures.allowed
}

# --- section -----------------------------------------------------------------

test_section_missing_denied if {
	facts := fixtures.without("/topology")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MISSING"})
	some msg in messages(facts, "deny", "TOPOLOGY_MISSING")
	contains(msg, "candidate n4")
}

test_section_not_an_object_denied if {
	outcome(fixtures.patched("/topology", null)) == fixtures.denied({"TOPOLOGY_MISSING"})
}

test_not_collected_denied_with_collector_error if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/topology/collected", "value": false},
		{"op": "replace", "path": "/topology/error", "value": "raft: not the leader"},
	])
	outcome(facts) == fixtures.denied({"TOPOLOGY_NOT_COLLECTED"})
	some msg in messages(facts, "deny", "TOPOLOGY_NOT_COLLECTED")
	contains(msg, "(raft: not the leader)")
}

test_not_collected_ignores_other_fields if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/topology/collected", "value": false},
		{"op": "replace", "path": "/topology/servers", "value": "garbage"},
	])
	outcome(facts) == fixtures.denied({"TOPOLOGY_NOT_COLLECTED"})
	some msg in messages(facts, "deny", "TOPOLOGY_NOT_COLLECTED")
	contains(msg, "no error reported")
}

test_collected_must_be_true if {
	outcome(fixtures.without("/topology/collected")) == fixtures.denied({"TOPOLOGY_NOT_COLLECTED"})
}

# --- candidate ---------------------------------------------------------------

test_candidate_malformed_denied if {
	outcome(fixtures.patched("/candidate/raft_addr", "")) == fixtures.denied({"CANDIDATE_MALFORMED"})
	outcome(fixtures.patched("/candidate/id", 4)) == fixtures.denied({"CANDIDATE_MALFORMED"})
	outcome(fixtures.without("/candidate")) == fixtures.denied({"CANDIDATE_MALFORMED"})
	some msg in messages(fixtures.without("/candidate"), "deny", "CANDIDATE_MALFORMED")
	contains(msg, "got nothing")
}

# --- malformed ---------------------------------------------------------------

test_servers_not_an_array_denied if {
	facts := fixtures.patched("/topology/servers", {"n1": {}})
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "servers must be an array, got object")
}

test_servers_missing_denied if {
	outcome(fixtures.without("/topology/servers")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

# Quorum arithmetic still runs over what can be read: n1 is the only voter.
test_server_not_an_object_denied if {
	facts := with_servers([voter("n1", true), "n2"])
	outcome(facts) == {"allow": false, "deny": {"TOPOLOGY_MALFORMED"}, "warn": even}
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "servers[1] must be an object, got string")
}

test_server_fields_required if {
	every field in ["id", "address", "suffrage", "healthy"] {
		facts := fixtures.without(sprintf("/topology/servers/1/%s", [field]))
		"TOPOLOGY_MALFORMED" in outcome(facts).deny
		not outcome(facts).allow
	}
}

test_server_healthy_as_string_denied if {
	facts := fixtures.patched("/topology/servers/1/healthy", "true")
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "servers[1] healthy must be a boolean, got string")
	not outcome(facts).allow
}

test_unknown_suffrage_denied if {
	facts := fixtures.patched("/topology/servers/1/suffrage", "staging")

	# A server of unknown suffrage is not counted as a voter: n1 alone grows to two.
	outcome(facts) == {"allow": false, "deny": {"TOPOLOGY_MALFORMED"}, "warn": even}
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, `servers[1] suffrage must be "voter" or "nonvoter", got "staging"`)
}

test_config_index_must_be_a_number if {
	facts := fixtures.patched("/topology/config_index", "12")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "config_index must be a number, got string")
}

test_leader_must_be_an_object if {
	facts := fixtures.patched("/topology/leader", "n1")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "leader must be an object, got string")
}

test_leader_fields_must_be_strings if {
	facts := fixtures.without("/topology/leader/id")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "leader.id must be a string, got missing")
	outcome(fixtures.patched("/topology/leader/address", 7401)) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

# --- leader ------------------------------------------------------------------

test_no_leader_denied if {
	facts := fixtures.patched("/topology/leader", {"id": "", "address": ""})
	outcome(facts) == fixtures.denied({"NO_LEADER"})
	some msg in messages(facts, "deny", "NO_LEADER")
	contains(msg, "cannot add candidate n4: the cluster has no leader")
}

# --- tombstones --------------------------------------------------------------

test_tombstoned_id_denied if {
	facts := fixtures.patched("/topology/tombstones", ["n0", "n4"])
	outcome(facts) == fixtures.denied({"ID_TOMBSTONED"})
	some msg in messages(facts, "deny", "ID_TOMBSTONED")
	contains(msg, `candidate id "n4" belongs to a removed member`)
}

test_empty_tombstones_allowed if {
	outcome(fixtures.patched("/topology/tombstones", [])) == fixtures.allowed
}

# Absent tombstones prove nothing: the stage refuses rather than assume none.
test_tombstones_missing_denied if {
	outcome(fixtures.without("/topology/tombstones")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

test_tombstones_wrong_type_denied if {
	outcome(fixtures.patched("/topology/tombstones", [4])) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	outcome(fixtures.patched("/topology/tombstones", "n4")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

# --- duplicates --------------------------------------------------------------

test_duplicate_id_of_a_server_denied if {
	facts := with_servers([voter("n1", true), voter("n2", true), nonvoter("n4", true)])
	outcome(facts).deny == {"DUPLICATE_ID"}
	some msg in messages(facts, "deny", "DUPLICATE_ID")
	contains(msg, `candidate id "n4" is already used by the member at n4.cluster.test:7401`)
}

# The leader counts as a member even if the configuration does not list it.
test_duplicate_id_of_the_leader_denied if {
	facts := fixtures.patched("/topology/leader", {"id": "n4", "address": "127.0.0.1:7441"})
	outcome(facts) == fixtures.denied({"DUPLICATE_ID"})
}

test_duplicate_address_of_a_server_denied if {
	facts := with_servers([voter("n1", true), object.union(voter("n2", true), {"address": "127.0.0.1:7431"})])
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	contains(msg, `candidate n4: raft address "127.0.0.1:7431" is already used by member n2`)
}

test_duplicate_address_of_the_leader_denied if {
	facts := fixtures.patched("/topology/leader", {"id": "n9", "address": "127.0.0.1:7431"})
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
}

test_rejoining_same_member_denied_once_per_code if {
	facts := fixtures.patched("/candidate", {"id": "n2", "raft_addr": "127.0.0.1:7411", "api_url": "http://127.0.0.1:7410"})
	outcome(facts) == fixtures.denied({"DUPLICATE_ID", "DUPLICATE_ADDRESS"})
	count(data.admitd.stages.topology.deny) == 2 with input as facts
}

# --- quorum (etcd IsReadyToAddVotingMember) ----------------------------------
# enlarged = voters + 1; quorum = floor(enlarged / 2) + 1; healthy voters must be >= quorum.

# 1 healthy voter -> 2 voters: quorum floor(2/2)+1 = 2, 1 healthy < 2, but etcd's
# special case allows a single healthy voter to grow to two. 2 is even: warn.
test_quorum_one_healthy_voter_to_two_allowed if {
	outcome(with_servers([voter("n1", true)])) == {"allow": true, "deny": set(), "warn": even}
}

# 1 unhealthy voter -> 2 voters: quorum 2, 0 healthy: deny (no special case).
test_quorum_one_unhealthy_voter_denied if {
	facts := with_servers([voter("n1", false)])
	outcome(facts) == {"allow": false, "deny": {"QUORUM_UNSAFE"}, "warn": even}
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding n4 makes 2 voters needing quorum 2, but only 0 voters are healthy (n1 unhealthy)")
}

# 2 healthy voters -> 3 voters: quorum floor(3/2)+1 = 2, 2 healthy >= 2: allow.
test_quorum_two_healthy_voters_to_three_allowed if {
	outcome(with_servers([voter("n1", true), voter("n2", true)])) == fixtures.allowed
}

# 2 voters, 1 unhealthy -> 3 voters: quorum 2, 1 healthy < 2: deny.
test_quorum_two_voters_one_unhealthy_denied if {
	facts := with_servers([voter("n1", true), voter("n2", false)])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding n4 makes 3 voters needing quorum 2, but only 1 voters are healthy (n2 unhealthy)")
}

# 3 healthy voters -> 4 voters: quorum floor(4/2)+1 = 3, 3 healthy >= 3: allow, 4 is even: warn.
test_quorum_three_healthy_voters_to_four_allowed_with_warning if {
	facts := with_servers([voter("n1", true), voter("n2", true), voter("n3", true)])
	outcome(facts) == {"allow": true, "deny": set(), "warn": even}
	some msg in messages(facts, "warn", "EVEN_VOTERS")
	contains(msg, "adding n4 makes 4 voters, an even count: they survive the loss of 1, no more than 3 voters would")
}

# 3 voters, 1 unhealthy -> 4 voters: quorum 3, 2 healthy < 3: deny.
test_quorum_three_voters_one_unhealthy_denied if {
	facts := with_servers([voter("n1", true), voter("n2", true), voter("n3", false)])
	outcome(facts) == {"allow": false, "deny": {"QUORUM_UNSAFE"}, "warn": even}
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding n4 makes 4 voters needing quorum 3, but only 2 voters are healthy (n3 unhealthy)")
}

# 5 voters, 2 unhealthy -> 6 voters: quorum floor(6/2)+1 = 4, 3 healthy < 4: deny.
test_quorum_five_voters_two_unhealthy_denied if {
	facts := with_servers([
		voter("n1", true), voter("n2", false), voter("n3", true),
		voter("n5", false), voter("n6", true),
	])
	outcome(facts) == {"allow": false, "deny": {"QUORUM_UNSAFE"}, "warn": even}
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding n4 makes 6 voters needing quorum 4, but only 3 voters are healthy (n2, n5 unhealthy)")
}

# 5 voters, 1 unhealthy -> 6 voters: quorum 4, 4 healthy >= 4: allow, 6 is even: warn.
test_quorum_five_voters_one_unhealthy_allowed if {
	facts := with_servers([
		voter("n1", true), voter("n2", true), voter("n3", true),
		voter("n5", false), voter("n6", true),
	])
	outcome(facts) == {"allow": true, "deny": set(), "warn": even}
}

# Non-voters take no part: 2 healthy voters + 3 unhealthy non-voters -> 3 voters:
# quorum 2, 2 healthy >= 2: allow. (Counted as voters, 2 of 6 healthy would deny.)
test_quorum_unhealthy_nonvoters_do_not_count if {
	facts := with_servers([
		voter("n1", true), voter("n2", true),
		nonvoter("n5", false), nonvoter("n6", false), nonvoter("n7", false),
	])
	outcome(facts) == fixtures.allowed
}

# Healthy non-voters do not make up for unhealthy voters either:
# 2 voters, 1 unhealthy, + 3 healthy non-voters -> 3 voters: quorum 2, 1 healthy: deny.
test_quorum_healthy_nonvoters_do_not_count if {
	facts := with_servers([
		voter("n1", true), voter("n2", false),
		nonvoter("n5", true), nonvoter("n6", true), nonvoter("n7", true),
	])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
}

# No voters at all -> 1 voter: quorum floor(1/2)+1 = 1, 0 healthy: deny.
test_quorum_no_voters_denied if {
	facts := with_servers([nonvoter("n5", true)])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	contains(msg, "(the configuration has no voters)")
}

# A voter with a malformed health flag is not proven healthy: it is counted unhealthy.
test_quorum_unproven_health_counts_as_unhealthy if {
	facts := with_servers([voter("n1", true), object.remove(voter("n2", true), ["healthy"])])
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED", "QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	contains(msg, "(n2 unhealthy)")
}

# --- fail closed -------------------------------------------------------------

# Even if every deny rule were deleted, allow needs its own proof.
test_allow_requires_proof_without_deny_rules if {
	every facts in [
		fixtures.without("/topology"),
		fixtures.patched("/topology/collected", false),
		fixtures.patched("/topology/config_index", "12"),
		fixtures.patched("/topology/leader/id", ""),
		fixtures.patched("/topology/servers/1/suffrage", "staging"),
		fixtures.patched("/candidate/id", "n2"),
		fixtures.patched("/candidate/raft_addr", "127.0.0.1:7401"),
		fixtures.without("/candidate/id"),
		with_servers([voter("n1", true), voter("n2", false)]),
	] {
		not data.admitd.stages.topology.allow with input as facts
			with data.admitd.stages.topology.deny as set()
	}
}

test_messages_survive_garbage_input if {
	facts := {"candidate": "n4", "topology": {"collected": true, "servers": [{"suffrage": "voter", "id": 7}]}}
	outcome(facts) == {"allow": false, "deny": {"CANDIDATE_MALFORMED", "TOPOLOGY_MALFORMED", "QUORUM_UNSAFE"}, "warn": even}
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding <no id> makes 2 voters needing quorum 2, but only 0 voters are healthy (7 unhealthy)")
}
