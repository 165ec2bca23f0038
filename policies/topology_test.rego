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

# promote_with_servers is fixtures.promote with the configuration replaced.
promote_with_servers(servers) := fixtures.promote_patched("/topology/servers", servers)

# The staged candidate's own entry.
staged_n4 := object.union(resolved("127.0.0.1:7431"), {"id": "n4", "suffrage": "nonvoter", "healthy": true})

# An address as the collector resolves an IP literal: to itself; an empty
# address to nothing, with no error.
resolved(address) := {"address": address, "canonical_addresses": [address | address != ""], "address_error": ""}

# at is server moved to address, resolved as an IP literal.
at(server, address) := object.union(server, resolved(address))

# A leader entry, and none.
leader(id, address) := object.union(resolved(address), {"id": id})

no_leader := leader("", "")

# with_candidate is facts with the candidate's raft_addr replaced, and
# topology.candidate_address with it, resolved as an IP literal.
with_candidate(facts, candidate) := json.patch(facts, [
	{"op": "add", "path": "/candidate", "value": candidate},
	{"op": "add", "path": "/topology/candidate_address", "value": resolved(candidate.raft_addr)},
])

with_raft_addr(facts, raft_addr) := with_candidate(facts, object.union(facts.candidate, {"raft_addr": raft_addr}))

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
	messages(fixtures.without("/candidate"), "deny", "CANDIDATE_MALFORMED") == {"candidate must have non-empty string id and raft_addr, got nothing; fix the admission request"}
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
	facts := fixtures.patched("/topology/leader", no_leader)
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
	facts := fixtures.patched("/topology/leader", leader("n4", "127.0.0.1:7441"))
	outcome(facts) == fixtures.denied({"DUPLICATE_ID"})
}

test_duplicate_address_of_a_server_denied if {
	facts := with_servers([voter("n1", true), at(voter("n2", true), "127.0.0.1:7431")])
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	contains(msg, `candidate n4: raft address "127.0.0.1:7431" is already used by member n2`)
}

test_duplicate_address_of_the_leader_denied if {
	facts := fixtures.patched("/topology/leader", leader("n9", "127.0.0.1:7431"))
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
}

test_rejoining_same_member_denied_once_per_code if {
	facts := with_candidate(fixtures.good, {"id": "n2", "raft_addr": "127.0.0.1:7411", "api_url": "http://127.0.0.1:7410"})
	outcome(facts) == fixtures.denied({"DUPLICATE_ID", "DUPLICATE_ADDRESS"})
	count(data.admitd.stages.topology.deny) == 2 with input as facts
}

# --- canonical addresses ----------------------------------------------------
# n2 is a voter at 127.0.0.1:39811; "evil" asks to join at another spelling
# of that address. The collector resolved each address (canonical_addresses).

n2_at_39811 := at(voter("n2", true), "127.0.0.1:39811")

# evil_at is the admission of "evil" at raft_addr, which the collector
# resolved to canonical (an array of endpoints) with error.
evil_at(raft_addr, canonical, error) := json.patch(with_servers([voter("n1", true), n2_at_39811]), [
	{"op": "add", "path": "/candidate", "value": {"id": "evil", "raft_addr": raft_addr, "api_url": ""}},
	{"op": "add", "path": "/topology/candidate_address", "value": {"address": raft_addr, "canonical_addresses": canonical, "address_error": error}},
])

test_duplicate_address_localhost_denied if {
	facts := evil_at("localhost:39811", ["127.0.0.1:39811", "[::1]:39811"], "")
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	messages(facts, "deny", "DUPLICATE_ADDRESS") == {`candidate evil: raft address "localhost:39811" is n2's raft address 127.0.0.1:39811: both resolve to 127.0.0.1:39811; give the candidate its own address, or remove the old member first`}
}

test_duplicate_address_zero_padded_port_denied if {
	facts := evil_at("127.0.0.1:039811", ["127.0.0.1:39811"], "")
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	messages(facts, "deny", "DUPLICATE_ADDRESS") == {`candidate evil: raft address "127.0.0.1:039811" is n2's raft address 127.0.0.1:39811: both resolve to 127.0.0.1:39811; give the candidate its own address, or remove the old member first`}
}

test_duplicate_address_ipv4_mapped_ipv6_denied if {
	facts := evil_at("[::ffff:127.0.0.1]:39811", ["127.0.0.1:39811"], "")
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	contains(msg, `raft address "[::ffff:127.0.0.1]:39811" is n2's raft address 127.0.0.1:39811`)
}

# Any shared endpoint is enough: a member whose name resolves to several
# addresses collides with a candidate at any one of them.
test_duplicate_address_any_overlap_denied if {
	facts := json.patch(evil_at("10.0.0.2:7411", ["10.0.0.2:7411"], ""), [{"op": "replace", "path": "/topology/servers/1", "value": object.union(voter("n2", true), {
		"address": "n2.cluster.test:7411",
		"canonical_addresses": ["10.0.0.1:7411", "10.0.0.2:7411", "[fd00::2]:7411"],
	})}])
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	contains(msg, `"10.0.0.2:7411" is n2's raft address n2.cluster.test:7411: both resolve to 10.0.0.2:7411`)
}

# The leader is compared even when the configuration does not list it.
test_duplicate_address_of_the_leader_resolved_denied if {
	facts := json.patch(evil_at("localhost:7401", ["127.0.0.1:7401"], ""), [
		{"op": "replace", "path": "/topology/servers", "value": [n2_at_39811]},
		{"op": "replace", "path": "/topology/leader", "value": leader("n1", "127.0.0.1:7401")},
	])
	outcome(facts) == {"allow": false, "deny": {"DUPLICATE_ADDRESS"}, "warn": even}
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	contains(msg, "is n1's raft address 127.0.0.1:7401")
}

# The raw comparison stays: the same spelling denies whatever was resolved.
test_duplicate_address_same_spelling_denied_whatever_resolved if {
	facts := evil_at("127.0.0.1:39811", ["192.0.2.1:39811"], "")
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	messages(facts, "deny", "DUPLICATE_ADDRESS") == {`candidate evil: raft address "127.0.0.1:39811" is already used by member n2; give the candidate its own address, or remove the old member first`}
}

# Distinct loopback addresses are distinct addresses: only a listener
# bound to 0.0.0.0 answers on both, so 127.0.0.2 is not n2's 127.0.0.1.
test_other_loopback_address_is_another_address if {
	outcome(evil_at("127.0.0.2:39811", ["127.0.0.2:39811"], "")) == fixtures.allowed
	outcome(evil_at("[::1]:39811", ["[::1]:39811"], "")) == fixtures.allowed
}

test_address_unresolved_denied if {
	facts := evil_at("nowhere.invalid:39811", [], "resolving \"nowhere.invalid:39811\": lookup nowhere.invalid: no such host")
	outcome(facts) == fixtures.denied({"ADDRESS_UNRESOLVED"})
	messages(facts, "deny", "ADDRESS_UNRESOLVED") == {`candidate evil: its raft address "nowhere.invalid:39811" did not resolve (resolving "nowhere.invalid:39811": lookup nowhere.invalid: no such host); the stage compares the endpoints addresses resolve to and cannot prove this one is no member's: fix the address or its name in DNS, then retry`}

	# No error given: still unresolved, and said so.
	some msg in messages(evil_at("nowhere.invalid:39811", [], ""), "deny", "ADDRESS_UNRESOLVED")
	contains(msg, "did not resolve (no error reported)")
}

# Unresolved but spelled like a member: both are said.
test_address_unresolved_and_same_spelling_denied if {
	outcome(evil_at("127.0.0.1:39811", [], "lookup failed")) == fixtures.denied({"ADDRESS_UNRESOLVED", "DUPLICATE_ADDRESS"})
}

test_member_address_unresolved_denied if {
	gone := object.union(voter("n2", true), {"canonical_addresses": [], "address_error": "lookup n2.cluster.test: no such host"})
	facts := with_servers([voter("n1", true), gone])
	outcome(facts) == fixtures.denied({"ADDRESS_UNRESOLVED"})
	messages(facts, "deny", "ADDRESS_UNRESOLVED") == {`candidate n4: member n2's raft address "n2.cluster.test:7401" did not resolve (lookup n2.cluster.test: no such host); the stage cannot prove the candidate's address "127.0.0.1:7431" is not n2's: fix the member's name in DNS, or remove n2, then retry`}

	# Staged or promoted alike; a removal compares no addresses.
	outcome(staged_with_servers([voter("n1", true), gone])) == fixtures.denied({"ADDRESS_UNRESOLVED"})
	outcome(promote_with_servers([voter("n1", true), gone, staged_n4])) == fixtures.denied({"ADDRESS_UNRESOLVED"})
	outcome(remove_with_servers([voter("n1", true), gone, voter("n3", true)])) == fixtures.allowed
	outcome(remove_with_servers([voter("n1", true), voter("n2", true), object.union(gone, {"id": "n3"})])) == fixtures.allowed
}

# Promoting, another member's resolved address is the candidate's: refused;
# its own entry is not a duplicate of itself.
test_promote_resolved_address_of_another_member_denied if {
	alias := object.union(voter("n2", true), {"address": "localhost:7431", "canonical_addresses": ["127.0.0.1:7431"]})
	facts := promote_with_servers([voter("n1", true), alias, staged_n4])
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	messages(facts, "deny", "DUPLICATE_ADDRESS") == {`candidate n4: raft address "127.0.0.1:7431" is n2's raft address localhost:7431: both resolve to 127.0.0.1:7431; give the candidate its own address, or remove the old member first`}
	unresolved := fixtures.promote_patched("/topology/candidate_address", {"address": "127.0.0.1:7431", "canonical_addresses": [], "address_error": "timeout"})
	outcome(unresolved) == fixtures.denied({"ADDRESS_UNRESOLVED"})
}

test_candidate_address_required if {
	facts := fixtures.without("/topology/candidate_address")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	messages(facts, "deny", "TOPOLOGY_MALFORMED") == {"candidate n4: malformed topology: candidate_address must be an object, got missing; this is a collector bug"}
	outcome(fixtures.promote_without("/topology/candidate_address")) == fixtures.denied({"TOPOLOGY_MALFORMED"})

	# Removal facts have none, and need none.
	outcome(fixtures.remove) == fixtures.allowed
}

test_candidate_address_must_be_the_candidates if {
	facts := fixtures.patched("/topology/candidate_address/address", "127.0.0.1:7441")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, `candidate_address.address "127.0.0.1:7441" is not the candidate's raft_addr "127.0.0.1:7431"`)
}

test_resolution_fields_must_be_typed if {
	every path_msg in [
		["/topology/candidate_address/canonical_addresses", "127.0.0.1:7431", "candidate_address.canonical_addresses must be an array, got string"],
		["/topology/candidate_address/canonical_addresses", [7431], "candidate_address.canonical_addresses must be an array of strings"],
		["/topology/candidate_address/address_error", null, "candidate_address.address_error must be a string, got null"],
		["/topology/leader/canonical_addresses", {}, "leader.canonical_addresses must be an array, got object"],
		["/topology/leader/address_error", false, "leader.address_error must be a string, got boolean"],
		["/topology/servers/1/canonical_addresses", null, "servers[1] canonical_addresses must be an array, got null"],
		["/topology/servers/1/canonical_addresses", [null], "servers[1] canonical_addresses must be an array of strings"],
		["/topology/servers/1/address_error", 0, "servers[1] address_error must be a string, got number"],
	] {
		facts := fixtures.patched(path_msg[0], path_msg[1])
		"TOPOLOGY_MALFORMED" in outcome(facts).deny
		not outcome(facts).allow
		some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
		contains(msg, path_msg[2])
	}
	some msg in messages(fixtures.without("/topology/servers/0/address_error"), "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "servers[0] address_error must be a string, got missing")
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

# --- phase -------------------------------------------------------------------

# Collectors always set the phase; without one the facts are an admission,
# the stricter path, as the engine reads them.
test_no_phase_is_an_admission if {
	outcome(fixtures.without("/phase")) == fixtures.allowed
	outcome(fixtures.patched("/phase", null)) == fixtures.allowed
	outcome(fixtures.patched("/phase", "")) == fixtures.allowed
	data.admitd.stages.topology.admit_phase with input as fixtures.without("/phase")
}

# A staged non-voter's facts without a phase are refused: it is a member
# already, and "promote" is no change of the admit phase.
test_staged_candidate_without_phase_denied if {
	outcome(fixtures.promote_without("/phase")) == fixtures.denied({"DUPLICATE_ID", "DUPLICATE_ADDRESS", "CHANGE_MALFORMED"})
}

test_unknown_phase_denied if {
	facts := fixtures.patched("/phase", "demote")
	outcome(facts) == fixtures.denied({"PHASE_MISMATCH"})
	some msg in messages(facts, "deny", "PHASE_MISMATCH")
	contains(msg, `candidate n4: the facts' phase is "demote", want "admit", "promote" or "remove"; fix the collector`)
	outcome(fixtures.patched("/phase", 5)) == fixtures.denied({"PHASE_MISMATCH"})
}

# --- change ------------------------------------------------------------------

# The change is stated, never inferred: a document without one (from a
# collector that predates it) is not taken for either kind.
test_change_missing_denied if {
	facts := fixtures.without("/change")
	outcome(facts) == fixtures.denied({"CHANGE_MALFORMED"})
	messages(facts, "deny", "CHANGE_MALFORMED") == {`candidate n4: the facts' change is missing, want "add_nonvoter" or "add_voter" in the admit phase; the collector must state which membership change is asked for`}
}

test_change_unknown_denied if {
	every value in ["add_learner", "", null, 1, "promote", "ADD_VOTER"] {
		outcome(fixtures.patched("/change", value)) == fixtures.denied({"CHANGE_MALFORMED"})
	}
	some msg in messages(fixtures.patched("/change", "promote"), "deny", "CHANGE_MALFORMED")
	contains(msg, `the facts' change is "promote", want "add_nonvoter" or "add_voter" in the admit phase`)
}

# A promotion is a promotion: any other change, or none, is refused.
test_promote_change_must_be_promote if {
	every facts in [
		fixtures.promote_without("/change"),
		fixtures.promote_patched("/change", "add_voter"),
		fixtures.promote_patched("/change", "add_nonvoter"),
	] {
		outcome(facts) == fixtures.denied({"CHANGE_MALFORMED"})
	}
	some msg in messages(fixtures.promote_patched("/change", "add_voter"), "deny", "CHANGE_MALFORMED")
	contains(msg, `the facts' change is "add_voter", want "promote" in the promote phase`)
}

# An unknown phase is PHASE_MISMATCH alone: there is no change to expect.
test_change_not_judged_in_unknown_phase if {
	outcome(json.patch(fixtures.good, [
		{"op": "replace", "path": "/phase", "value": "demote"},
		{"op": "remove", "path": "/change"},
	])) == fixtures.denied({"PHASE_MISMATCH"})
}

# --- non-voter adds (change add_nonvoter) ------------------------------------

# staged_with_servers is fixtures.staged with the configuration replaced.
staged_with_servers(servers) := json.patch(fixtures.staged, [{"op": "add", "path": "/topology/servers", "value": servers}])

test_nonvoter_add_allowed if {
	outcome(fixtures.staged) == fixtures.allowed
}

# A non-voter add leaves the voters as they are: no even-count warning.
test_nonvoter_add_does_not_warn_even if {
	outcome(staged_with_servers([voter("n1", true)])) == fixtures.allowed
	outcome(staged_with_servers([voter("n1", true), voter("n2", true), voter("n3", true)])) == fixtures.allowed
}

# 3 voters, 1 down: a voter add (4 voters, quorum 3) is unsafe, but a
# non-voter add needs only the 3 voters' quorum 2 to commit, and 2 are healthy.
test_nonvoter_add_with_one_of_three_down_allowed if {
	servers := [voter("n1", true), voter("n2", true), voter("n3", false)]
	outcome(staged_with_servers(servers)) == fixtures.allowed
	outcome(with_servers(servers)) == {"allow": false, "deny": {"QUORUM_UNSAFE"}, "warn": even}
}

# 2 voters, 1 down: quorum 2 of 2, 1 healthy: the change cannot commit.
test_nonvoter_add_without_quorum_denied if {
	facts := staged_with_servers([voter("n1", true), voter("n2", false)])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	messages(facts, "deny", "QUORUM_UNSAFE") == {"adding non-voter n4 is a configuration change the 2 voters must commit with quorum 2, but only 1 voters are healthy (n2 unhealthy); bring the unhealthy voters back or remove them before adding a non-voter"}
}

test_nonvoter_add_one_unhealthy_voter_denied if {
	outcome(staged_with_servers([voter("n1", false)])) == fixtures.denied({"QUORUM_UNSAFE"})
	facts := staged_with_servers([nonvoter("n5", true)])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	contains(msg, "the 0 voters must commit with quorum 1, but only 0 voters are healthy (the configuration has no voters)")
}

# --- staging (admit) ---------------------------------------------------------

# n5 is in stage; with one slot, n4 cannot be admitted as a non-voter
# until n5 is done.
staging_n5 := json.patch(fixtures.staged, [
	{"op": "add", "path": "/topology/servers/-", "value": nonvoter("n5", true)},
	{"op": "replace", "path": "/topology/staged", "value": ["n5"]},
])

test_staging_full_denied if {
	outcome(staging_n5) == fixtures.denied({"STAGING_FULL"})
	some msg in messages(staging_n5, "deny", "STAGING_FULL")
	contains(msg, "cannot admit candidate n4: 1 non-voters are in stage (n5), as many as max_staged 1 allows; retry once one is promoted or removed")
}

# A direct voter add takes no staging slot.
test_staging_full_does_not_apply_to_voter_add if {
	outcome(json.patch(staging_n5, [{"op": "replace", "path": "/change", "value": "add_voter"}])) == fixtures.allowed
}

test_staging_slot_free_allowed if {
	outcome(json.patch(staging_n5, [{"op": "replace", "path": "/topology/max_staged", "value": 2}])) == fixtures.allowed
}

test_staging_over_limit_denied if {
	facts := json.patch(staging_n5, [{"op": "replace", "path": "/topology/staged", "value": ["n5", "n6"]}])
	outcome(facts) == fixtures.denied({"STAGING_FULL"})
	some msg in messages(facts, "deny", "STAGING_FULL")
	contains(msg, "2 non-voters are in stage (n5, n6)")
}

# Absent staging facts prove nothing: the stage refuses rather than assume a free slot.
test_staged_missing_denied if {
	facts := fixtures.without("/topology/staged")
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "staged must be an array of strings, got missing")
	outcome(fixtures.patched("/topology/staged", [4])) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	outcome(fixtures.patched("/topology/staged", "n5")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

test_max_staged_must_be_at_least_one if {
	every value in [0, -1, 0.5, "1", null] {
		facts := fixtures.patched("/topology/max_staged", value)
		outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED"})
		some msg in messages(facts, "deny", "TOPOLOGY_MALFORMED")
		contains(msg, sprintf("max_staged must be a number of at least 1, got %s", [json.marshal(value)]))
	}
	some msg in messages(fixtures.without("/topology/max_staged"), "deny", "TOPOLOGY_MALFORMED")
	contains(msg, "max_staged must be a number of at least 1, got missing")
}

# --- promote -----------------------------------------------------------------

test_staged_candidate_promotion_allowed if {
	outcome(fixtures.promote) == fixtures.allowed
}

# Staging slots limit admissions only: the promotion frees one.
test_staging_full_does_not_apply_to_promotion if {
	facts := json.patch(fixtures.promote, [
		{"op": "add", "path": "/topology/servers/-", "value": nonvoter("n5", true)},
		{"op": "replace", "path": "/topology/staged", "value": ["n4", "n5"]},
	])
	outcome(facts) == fixtures.allowed
}

test_promote_already_a_voter_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), object.union(staged_n4, {"suffrage": "voter"})])

	# Counted as a voter already: 3 voters + 1 = 4, quorum 3, 3 healthy.
	outcome(facts) == {"allow": false, "deny": {"CANDIDATE_NOT_STAGED"}, "warn": even}
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	msg == "cannot promote candidate n4: it is already a voter: there is nothing to promote"
}

test_promote_not_in_configuration_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true)])
	outcome(facts) == fixtures.denied({"CANDIDATE_NOT_STAGED"})
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	contains(msg, "cannot promote candidate n4: it is not in the configuration: it was removed, or never admitted; admit it again in stage")
}

test_promote_address_differs_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), at(staged_n4, "127.0.0.1:9999")])
	outcome(facts) == fixtures.denied({"CANDIDATE_NOT_STAGED"})
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	contains(msg, "its id is in the configuration at 127.0.0.1:9999, not at its raft_addr 127.0.0.1:7431")
}

test_promote_not_listed_as_staged_denied if {
	facts := fixtures.promote_patched("/topology/staged", ["n5"])
	outcome(facts) == fixtures.denied({"CANDIDATE_NOT_STAGED"})
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	contains(msg, `it is a non-voter but not in topology.staged ["n5"]: it was not admitted in stage, or its stage is not recorded yet; retry shortly`)
}

# A non-voter cannot lead: a leader with the candidate's id is a voter.
test_promote_candidate_is_leader_denied if {
	facts := fixtures.promote_patched("/topology/leader", leader("n4", "127.0.0.1:7431"))
	outcome(facts) == fixtures.denied({"CANDIDATE_NOT_STAGED"})
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	contains(msg, "it is the leader, so already a voter")
}

test_promote_several_reasons_in_one_message if {
	facts := json.patch(fixtures.promote, [
		{"op": "replace", "path": "/topology/servers/2", "value": at(object.union(staged_n4, {"suffrage": "voter"}), "127.0.0.1:9999")},
		{"op": "replace", "path": "/topology/staged", "value": []},
	])
	some msg in messages(facts, "deny", "CANDIDATE_NOT_STAGED")
	msg == "cannot promote candidate n4: it is already a voter: there is nothing to promote; its id is in the configuration at 127.0.0.1:9999, not at its raft_addr 127.0.0.1:7431: promote the node that was staged, at the address it was admitted with"
}

test_promote_id_on_two_members_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), staged_n4, nonvoter("n4", true)])
	outcome(facts) == fixtures.denied({"DUPLICATE_ID", "CANDIDATE_NOT_STAGED"})
	some msg in messages(facts, "deny", "DUPLICATE_ID")
	msg == `candidate id "n4" is used by 2 members of the configuration (at ["127.0.0.1:7431", "n4.cluster.test:7401"]); remove all but the staged non-voter`

	# Listed twice at the same address: no other reason, still refused.
	outcome(promote_with_servers([voter("n1", true), voter("n2", true), staged_n4, staged_n4])) == fixtures.denied({"DUPLICATE_ID"})
}

test_promote_address_of_another_member_denied if {
	facts := promote_with_servers([voter("n1", true), at(voter("n2", true), "127.0.0.1:7431"), staged_n4])
	outcome(facts) == fixtures.denied({"DUPLICATE_ADDRESS"})
	some msg in messages(facts, "deny", "DUPLICATE_ADDRESS")
	msg == `candidate n4: raft address "127.0.0.1:7431" is already used by member n2; give the candidate its own address, or remove the old member first`
	at_leader := fixtures.promote_patched("/topology/leader", leader("n9", "127.0.0.1:7431"))
	outcome(at_leader) == fixtures.denied({"DUPLICATE_ADDRESS"})
}

test_promote_tombstoned_denied if {
	outcome(fixtures.promote_patched("/topology/tombstones", ["n4"])) == fixtures.denied({"ID_TOMBSTONED"})
}

test_promote_no_leader_denied if {
	facts := fixtures.promote_patched("/topology/leader", no_leader)
	outcome(facts) == fixtures.denied({"NO_LEADER"})
}

# The quorum rule is the admission's: the candidate's vote is not counted
# on before it has one. 2 voters, 1 unhealthy -> 3: quorum 2, 1 healthy.
test_promote_quorum_unsafe_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", false), staged_n4])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	msg == "promoting n4 makes 3 voters needing quorum 2, but only 1 voters are healthy (n2 unhealthy); bring the unhealthy voters back or remove them before promoting it"
}

test_promote_one_voter_to_two_allowed_with_warning if {
	facts := promote_with_servers([voter("n1", true), staged_n4])
	outcome(facts) == {"allow": true, "deny": set(), "warn": even}
	some msg in messages(facts, "warn", "EVEN_VOTERS")
	startswith(msg, "promoting n4 makes 2 voters, an even count")
}

# Other non-voters in stage take no part either.
test_promote_ignores_other_nonvoters if {
	facts := json.patch(fixtures.promote, [
		{"op": "add", "path": "/topology/servers/-", "value": nonvoter("n5", false)},
		{"op": "replace", "path": "/topology/staged", "value": ["n4", "n5"]},
	])
	outcome(facts) == fixtures.allowed
}

# raft-autopilot promotes only a healthy server: a staged non-voter the
# leader sees down is refused, however good its catch-up streak, since
# as a voter it would count against the quorum from the start.
test_promote_candidate_unhealthy_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), object.union(staged_n4, {"healthy": false})])
	outcome(facts) == fixtures.denied({"CANDIDATE_UNHEALTHY"})
	messages(facts, "deny", "CANDIDATE_UNHEALTHY") == {"cannot promote candidate n4: the leader does not see it healthy (its topology.servers entry has healthy false); a voter that is down counts against the quorum from the moment it is promoted, so check the node, then retry once the leader sees it healthy"}
}

# Health not proven is not health: a missing flag is malformed and unhealthy.
test_promote_candidate_health_unproven_denied if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), object.remove(staged_n4, ["healthy"])])
	outcome(facts) == fixtures.denied({"TOPOLOGY_MALFORMED", "CANDIDATE_UNHEALTHY"})
	some msg in messages(facts, "deny", "CANDIDATE_UNHEALTHY")
	contains(msg, "(its topology.servers entry has healthy null)")
}

# Its own health is judged apart from quorum: 2 healthy voters + n4 -> 3
# voters, quorum 2, 2 healthy, so the quorum rule alone would allow it.
test_promote_candidate_unhealthy_is_not_a_quorum_matter if {
	facts := promote_with_servers([voter("n1", true), voter("n2", true), object.union(staged_n4, {"healthy": false})])
	data.admitd.stages.topology.quorum_safe with input as facts
	not data.admitd.stages.topology.candidate_healthy with input as facts
}

test_promote_malformed_staging_denied if {
	outcome(fixtures.promote_without("/topology/staged")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	outcome(fixtures.promote_patched("/topology/max_staged", 0)) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	outcome(fixtures.promote_patched("/topology/servers", "n4")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
}

# --- remove (phase "remove", change "remove" or "demote") --------------------
# Taking a voter's vote away (etcd IsReadyToRemoveVotingMember): after =
# voters - 1; quorum = floor(after / 2) + 1; healthy_after = the healthy
# voters other than the candidate, which must be >= quorum. A non-voter
# takes no part: removing it leaves the voters and their quorum as they are.
# fixtures.remove removes n3 from n1 (leader), n2, n3, all healthy voters.

remove_with_servers(servers) := fixtures.remove_patched("/topology/servers", servers)

demote_with_servers(servers) := json.patch(fixtures.demote, [{"op": "add", "path": "/topology/servers", "value": servers}])

# The three voters of fixtures.remove, n2 and n3 healthy as given; n1, the
# leader, is healthy.
three(n2, n3) := [voter("n1", true), voter("n2", n2), voter("n3", n3)]

# n1 (leader), n2 as given, n3 as given, n5 and n6 as given.
five(n2, n3, n5, n6) := [voter("n1", true), voter("n2", n2), voter("n3", n3), voter("n5", n5), voter("n6", n6)]

# 3 healthy voters, remove n3: 2 remain, 2 healthy, a quorum of 2 is 2:
# allow. 2 voters is an even count, but only a change that adds a vote
# warns about it.
test_remove_voter_of_healthy_three_allowed if {
	outcome(fixtures.remove) == fixtures.allowed
}

# The member is not asked anything: facts with no reachability, init_state
# or catch_up section, and a candidate without an API, are enough.
test_remove_needs_nothing_from_the_member if {
	every section in ["reachability", "init_state", "catch_up"] {
		not section in object.keys(fixtures.remove)
	}
	fixtures.remove.candidate.api_url == ""
}

# 3 voters, n2 down, remove healthy n3: 2 remain, 1 healthy (n1), a quorum
# of 2 is 2: deny.
test_remove_healthy_voter_3_voters_1_down_denied if {
	facts := remove_with_servers(three(false, true))
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	messages(facts, "deny", "QUORUM_UNSAFE") == {"cannot remove voter n3: 1 healthy voters would remain of 2, a quorum of 2 is 2 (n2 unhealthy); bring the unhealthy voters back, or remove an unhealthy voter first, then retry"}
}

# 3 voters, n3 down, remove n3 itself: 2 remain, 2 healthy (n1, n2), a
# quorum of 2 is 2: allow. Removing the dead member is the common case.
test_remove_down_voter_3_voters_1_down_allowed if {
	outcome(remove_with_servers(three(true, false))) == fixtures.allowed
}

# 5 voters, n5 and n6 down, remove healthy n3: 4 remain, 2 healthy (n1,
# n2), a quorum of 4 is 3: deny.
test_remove_healthy_voter_5_voters_2_down_denied if {
	facts := remove_with_servers(five(true, true, false, false))
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	messages(facts, "deny", "QUORUM_UNSAFE") == {"cannot remove voter n3: 2 healthy voters would remain of 4, a quorum of 4 is 3 (n5, n6 unhealthy); bring the unhealthy voters back, or remove an unhealthy voter first, then retry"}
}

# 5 voters, n3 and n5 down, remove n3: 4 remain, 3 healthy (n1, n2, n6), a
# quorum of 4 is 3: allow.
test_remove_down_voter_5_voters_2_down_allowed if {
	outcome(remove_with_servers(five(true, false, false, true))) == fixtures.allowed
}

# 5 voters, n3, n5 and n6 down, remove n3: 4 remain, 2 healthy (n1, n2), a
# quorum of 4 is 3: deny. The healthy voters (2 of 5) have no quorum even
# today, so no removal is the way out: only bringing voters back is.
test_remove_down_voter_5_voters_3_down_denied if {
	facts := remove_with_servers(five(true, false, false, false))
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	messages(facts, "deny", "QUORUM_UNSAFE") == {"cannot remove voter n3: 2 healthy voters would remain of 4, a quorum of 4 is 3 (n5, n6 unhealthy); bring the unhealthy voters back, then retry"}
}

# 2 healthy voters, remove n3: 1 remains, 1 healthy, a quorum of 1 is 1: allow.
test_remove_one_of_two_voters_allowed if {
	outcome(remove_with_servers([voter("n1", true), voter("n3", true)])) == fixtures.allowed
}

# 2 voters, n1 (leader) seen down, remove n3: 1 remains, 0 healthy, a
# quorum of 1 is 1: deny.
test_remove_one_of_two_voters_leader_down_denied if {
	facts := remove_with_servers([voter("n1", false), voter("n3", true)])
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	contains(msg, "0 healthy voters would remain of 1, a quorum of 1 is 1 (n1 unhealthy)")
}

# The only voter: 0 would remain, and a configuration without voters never
# commits again. A live cluster's only voter is its leader, so both deny.
test_remove_last_voter_denied if {
	facts := json.patch(fixtures.remove, [
		{"op": "replace", "path": "/candidate", "value": {"id": "n1", "raft_addr": "127.0.0.1:7401", "api_url": ""}},
		{"op": "replace", "path": "/topology/servers", "value": [
			object.union(resolved("127.0.0.1:7401"), {"id": "n1", "suffrage": "voter", "healthy": true}),
			nonvoter("n5", true),
		]},
	])
	outcome(facts) == fixtures.denied({"REMOVES_LEADER", "LAST_VOTER"})
	messages(facts, "deny", "LAST_VOTER") == {"cannot remove member n1: it is the only voter, and a configuration without voters can never commit again; add another voter first"}
	demoted := json.patch(facts, [{"op": "replace", "path": "/change", "value": "demote"}])
	outcome(demoted) == fixtures.denied({"REMOVES_LEADER", "LAST_VOTER"})
	some msg in messages(demoted, "deny", "LAST_VOTER")
	startswith(msg, "cannot demote member n1: it is the only voter")
}

# LAST_VOTER stands on its own, with no quorum arithmetic (0 of 0, a
# quorum of 0 is 1, would say nothing), even for an only voter that is not
# the leader, which a live cluster cannot show (a non-voter cannot lead).
test_remove_last_voter_alone_denied if {
	facts := remove_with_servers([voter("n3", false), nonvoter("n5", true)])
	outcome(facts) == fixtures.denied({"LAST_VOTER"})
}

# Removing or demoting the leader: it makes the change, so it hands over
# first. n1 of 3 healthy: 2 remain, 2 healthy, a quorum of 2 is 2, so
# quorum is not the reason.
test_remove_leader_denied if {
	facts := fixtures.remove_patched("/candidate", {"id": "n1", "raft_addr": "127.0.0.1:7401", "api_url": ""})
	outcome(facts) == fixtures.denied({"REMOVES_LEADER"})
	messages(facts, "deny", "REMOVES_LEADER") == {"cannot remove member n1: it is the leader; transfer leadership first (raft's LeadershipTransfer), then ask the new leader"}
	demoted := json.patch(facts, [{"op": "replace", "path": "/change", "value": "demote"}])
	outcome(demoted) == fixtures.denied({"REMOVES_LEADER"})
	some msg in messages(demoted, "deny", "REMOVES_LEADER")
	startswith(msg, "cannot demote member n1: it is the leader")
}

# A non-voter takes no part in quorum: removing it leaves the voters and
# their quorum as they are, whatever anyone's health. 3 voters, n2 down, n5
# down: the voters stay 3 (quorum 2), allow; 3 voters, n2 and n3 down
# (1 healthy, below the quorum of 2): still allow.
test_remove_nonvoter_allowed_whatever_the_health if {
	one_down := json.patch(fixtures.remove, [
		{"op": "replace", "path": "/candidate", "value": {"id": "n5", "raft_addr": "n5.cluster.test:7401", "api_url": ""}},
		{"op": "replace", "path": "/topology/servers", "value": array.concat(three(false, true), [nonvoter("n5", false)])},
	])
	outcome(one_down) == fixtures.allowed
	two_down := json.patch(one_down, [{"op": "replace", "path": "/topology/servers", "value": array.concat(three(false, false), [nonvoter("n5", true)])}])
	outcome(two_down) == fixtures.allowed
}

# A staged non-voter can be removed (the promote deadline does so), and
# its staging slot goes with it.
test_remove_staged_nonvoter_allowed if {
	facts := json.patch(fixtures.remove, [
		{"op": "replace", "path": "/candidate", "value": {"id": "n4", "raft_addr": "127.0.0.1:7431", "api_url": "http://127.0.0.1:7430"}},
		{"op": "add", "path": "/topology/servers/-", "value": staged_n4},
		{"op": "replace", "path": "/topology/staged", "value": ["n4"]},
	])
	outcome(facts) == fixtures.allowed
}

# Demote healthy n3 of 3 healthy voters: 2 remain, 2 healthy, a quorum of
# 2 is 2: allow.
test_demote_voter_of_healthy_three_allowed if {
	outcome(fixtures.demote) == fixtures.allowed
}

# Demote healthy n3, n2 down: 2 remain, 1 healthy (n1), a quorum of 2 is 2: deny.
test_demote_healthy_voter_3_voters_1_down_denied if {
	facts := demote_with_servers(three(false, true))
	outcome(facts) == fixtures.denied({"QUORUM_UNSAFE"})
	messages(facts, "deny", "QUORUM_UNSAFE") == {"cannot demote voter n3: 1 healthy voters would remain of 2, a quorum of 2 is 2 (n2 unhealthy); bring the unhealthy voters back, or demote an unhealthy voter first, then retry"}
}

# Demote down n3, n3 the only one down: 2 remain, 2 healthy, a quorum of 2 is 2: allow.
test_demote_down_voter_3_voters_1_down_allowed if {
	outcome(demote_with_servers(three(true, false))) == fixtures.allowed
}

# A non-voter has no vote to take away.
test_demote_nonvoter_denied if {
	facts := json.patch(fixtures.demote, [
		{"op": "replace", "path": "/candidate", "value": {"id": "n5", "raft_addr": "n5.cluster.test:7401", "api_url": ""}},
		{"op": "add", "path": "/topology/servers/-", "value": nonvoter("n5", true)},
	])
	outcome(facts) == fixtures.denied({"NOT_A_VOTER"})
	messages(facts, "deny", "NOT_A_VOTER") == {`cannot demote member n5: it is a non-voter already, so there is no vote to take away; to take it out of the configuration, ask for the change "remove"`}
}

# Matched by id, as raft's RemoveServer and DemoteVoter match.
test_remove_not_a_member_denied if {
	facts := fixtures.remove_patched("/candidate", {"id": "n9", "raft_addr": "n9.cluster.test:7401", "api_url": ""})
	outcome(facts) == fixtures.denied({"NOT_A_MEMBER"})
	messages(facts, "deny", "NOT_A_MEMBER") == {"cannot remove member n9: it is not in the configuration (members: n1, n2, n3); it was removed already, or the id is wrong: check the id"}
	demoted := json.patch(facts, [{"op": "replace", "path": "/change", "value": "demote"}])
	outcome(demoted) == fixtures.denied({"NOT_A_MEMBER"})
	some msg in messages(remove_with_servers([]), "deny", "NOT_A_MEMBER")
	contains(msg, "(members: none)")
}

# A member whose servers entry cannot be read is not declared gone: the
# facts are malformed, and NOT_A_MEMBER (permanent) is not said.
test_remove_not_a_member_needs_readable_servers if {
	facts := remove_with_servers([voter("n1", true), voter("n2", true), "n3"])
	outcome(facts).deny == {"TOPOLOGY_MALFORMED"}
	not outcome(facts).allow
}

# Tombstones keep removed ids out; they do not keep members in.
test_remove_tombstoned_member_allowed if {
	outcome(fixtures.remove_patched("/topology/tombstones", ["n0", "n3"])) == fixtures.allowed
}

test_remove_no_leader_denied if {
	facts := fixtures.remove_patched("/topology/leader", no_leader)
	outcome(facts) == fixtures.denied({"NO_LEADER"})
	messages(facts, "deny", "NO_LEADER") == {"cannot remove member n3: the cluster has no leader (an election is in progress or quorum is lost); retry once a leader is elected"}
	some msg in messages(json.patch(facts, [{"op": "replace", "path": "/change", "value": "demote"}]), "deny", "NO_LEADER")
	startswith(msg, "cannot demote member n3: the cluster has no leader")
}

# The remove phase allows "remove" and "demote" only; anything else is
# refused, and still judged as the removal of a vote.
test_remove_change_must_be_remove_or_demote if {
	every value in ["add_voter", "add_nonvoter", "promote", "", null] {
		outcome(fixtures.remove_patched("/change", value)) == fixtures.denied({"CHANGE_MALFORMED"})
	}
	outcome(fixtures.remove_without("/change")) == fixtures.denied({"CHANGE_MALFORMED"})
	messages(fixtures.remove_patched("/change", "add_voter"), "deny", "CHANGE_MALFORMED") == {`candidate n3: the facts' change is "add_voter", want "demote" or "remove" in the remove phase; the collector must state which membership change is asked for`}
	facts := json.patch(fixtures.remove, [
		{"op": "remove", "path": "/change"},
		{"op": "replace", "path": "/topology/leader", "value": no_leader},
	])
	some msg in messages(facts, "deny", "NO_LEADER")
	startswith(msg, "cannot change member n3: the cluster has no leader")
	unsafe := json.patch(fixtures.remove, [
		{"op": "remove", "path": "/change"},
		{"op": "replace", "path": "/topology/servers", "value": three(false, true)},
	])
	outcome(unsafe) == fixtures.denied({"CHANGE_MALFORMED", "QUORUM_UNSAFE"})
	some unsafe_msg in messages(unsafe, "deny", "QUORUM_UNSAFE")
	startswith(unsafe_msg, "cannot remove or demote voter n3: 1 healthy voters would remain of 2")
}

# The gate names a member that is not in the configuration by its id
# alone: it has no address to give. NOT_A_MEMBER, not CANDIDATE_MALFORMED.
test_remove_by_id_alone if {
	facts := fixtures.remove_patched("/candidate", {"id": "n9", "raft_addr": "", "api_url": ""})
	outcome(facts) == fixtures.denied({"NOT_A_MEMBER"})

	# A member is found by id whatever the address given.
	outcome(fixtures.remove_patched("/candidate/raft_addr", "")) == fixtures.allowed
}

# The topology and the candidate are checked as in every phase.
test_remove_topology_checked if {
	outcome(fixtures.remove_without("/topology")) == fixtures.denied({"TOPOLOGY_MISSING"})
	outcome(fixtures.remove_patched("/topology/collected", false)) == fixtures.denied({"TOPOLOGY_NOT_COLLECTED"})
	outcome(fixtures.remove_without("/topology/staged")) == fixtures.denied({"TOPOLOGY_MALFORMED"})
	every candidate in [{"id": "", "raft_addr": ""}, {"id": "n3"}, {"id": "n3", "raft_addr": 7401}] {
		outcome(fixtures.remove_patched("/candidate", candidate)) == fixtures.denied({"CANDIDATE_MALFORMED"})
	}
	messages(fixtures.remove_patched("/candidate", {"id": "n3"}), "deny", "CANDIDATE_MALFORMED") == {`candidate must have a non-empty string id and a string raft_addr, got {"id":"n3"}; fix the removal request`}
}

# An admission's rules are not a removal's: the member is in the
# configuration, which is the point, and no staging slot is needed.
test_remove_skips_admission_rules if {
	facts := json.patch(fixtures.remove, [
		{"op": "add", "path": "/topology/servers/-", "value": nonvoter("n5", true)},
		{"op": "replace", "path": "/topology/staged", "value": ["n5"]},
	])
	outcome(facts) == fixtures.allowed

	# Judged as an admission, the member is a duplicate of itself, and the
	# facts lack the candidate_address an admission compares.
	outcome(fixtures.remove_without("/phase")).deny == {"CHANGE_MALFORMED", "DUPLICATE_ID", "DUPLICATE_ADDRESS", "TOPOLOGY_MALFORMED"}
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
		with_raft_addr(fixtures.good, "127.0.0.1:7401"),
		fixtures.without("/candidate/id"),
		with_servers([voter("n1", true), voter("n2", false)]),
		fixtures.patched("/phase", "demote"),
		fixtures.without("/topology/staged"),
		fixtures.patched("/topology/max_staged", 0),
		staging_n5,
		fixtures.promote_without("/phase"),
		fixtures.promote_patched("/topology/staged", []),
		fixtures.promote_patched("/topology/leader", leader("n4", "127.0.0.1:7431")),
		fixtures.promote_patched("/topology/leader", leader("n9", "127.0.0.1:7431")),
		promote_with_servers([voter("n1", true), voter("n2", true)]),
		promote_with_servers([voter("n1", true), voter("n2", true), object.union(staged_n4, {"suffrage": "voter"})]),
		promote_with_servers([voter("n1", true), voter("n2", true), at(staged_n4, "127.0.0.1:9999")]),
		promote_with_servers([voter("n1", true), voter("n2", true), staged_n4, staged_n4]),
		promote_with_servers([voter("n1", true), at(voter("n2", true), "127.0.0.1:7431"), staged_n4]),
		promote_with_servers([voter("n1", true), voter("n2", false), staged_n4]),
		fixtures.without("/change"),
		fixtures.patched("/change", "promote"),
		fixtures.promote_patched("/change", "add_voter"),
		staged_with_servers([voter("n1", true), voter("n2", false)]),
		json.patch(fixtures.staged, [{"op": "remove", "path": "/topology/staged"}]),
		promote_with_servers([voter("n1", true), voter("n2", true), object.union(staged_n4, {"healthy": false})]),
		fixtures.remove_without("/change"),
		fixtures.remove_patched("/change", "add_voter"),
		fixtures.remove_patched("/candidate/id", "n9"),
		fixtures.remove_patched("/candidate/id", "n1"),
		fixtures.remove_patched("/topology/leader", no_leader),
		remove_with_servers(three(false, true)),
		remove_with_servers(five(true, true, false, false)),
		remove_with_servers([voter("n3", true), nonvoter("n5", true)]),
		remove_with_servers([voter("n1", true), voter("n2", true), "n3"]),
		demote_with_servers(three(false, true)),
		demote_with_servers([voter("n1", true), voter("n2", true), nonvoter("n3", true)]),
	] {
		data.admitd.stages.topology.allow == false with input as facts
			with data.admitd.stages.topology.deny as set()
	}
}

test_messages_survive_garbage_input if {
	facts := {"candidate": "n4", "topology": {"collected": true, "servers": [{"suffrage": "voter", "id": 7}]}}
	outcome(facts) == {"allow": false, "deny": {"CANDIDATE_MALFORMED", "CHANGE_MALFORMED", "TOPOLOGY_MALFORMED", "QUORUM_UNSAFE"}, "warn": even}
	some msg in messages(facts, "deny", "QUORUM_UNSAFE")
	startswith(msg, "adding <no id> makes 2 voters needing quorum 2, but only 0 voters are healthy (7 unhealthy)")
}
