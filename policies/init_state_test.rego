# Tests for the init_state stage. Each test derives its facts from
# fixtures.good and checks the whole outcome: allow, deny codes, warn codes.
package admitd.stages.init_state_test

import data.admitd.fixtures

outcome(facts) := fixtures.summary(pkg) if {
	pkg := data.admitd.stages.init_state with input as facts
}

deny_messages(facts, code) := fixtures.messages(pkg, "deny", code) if {
	pkg := data.admitd.stages.init_state with input as facts
}

# --- allow -------------------------------------------------------------------

test_fresh_node_allowed if {
	outcome(fixtures.good) == fixtures.allowed
}

# --- section -----------------------------------------------------------------

test_section_missing_denied if {
	facts := fixtures.without("/init_state")
	outcome(facts) == fixtures.denied({"INIT_STATE_MISSING"})
	some msg in deny_messages(facts, "INIT_STATE_MISSING")
	contains(msg, "candidate n4")
}

test_section_not_an_object_denied if {
	outcome(fixtures.patched("/init_state", [])) == fixtures.denied({"INIT_STATE_MISSING"})
}

test_not_collected_denied_with_collector_error if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/collected", "value": false},
		{"op": "replace", "path": "/init_state/error", "value": "GET http://127.0.0.1:7430/v1/state: 404"},
	])
	outcome(facts) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	some msg in deny_messages(facts, "INIT_STATE_NOT_COLLECTED")
	contains(msg, "(GET http://127.0.0.1:7430/v1/state: 404)")
}

# A failed collector's other fields are meaningless: "initialized: false" from
# a failed collection proves nothing, and a stale cluster_id is not reported either.
test_not_collected_ignores_other_fields if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/collected", "value": false},
		{"op": "replace", "path": "/init_state/cluster_id", "value": "9a1"},
	])
	outcome(facts) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	some msg in deny_messages(facts, "INIT_STATE_NOT_COLLECTED")
	contains(msg, "no error reported")
}

test_collected_must_be_true if {
	outcome(fixtures.without("/init_state/collected")) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	outcome(fixtures.patched("/init_state/collected", 1)) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
}

# --- malformed ---------------------------------------------------------------

# The bug this project exists to prevent: `not input.init_state.initialized`
# is true when the field is missing. A missing field must deny.
test_initialized_missing_denied if {
	facts := fixtures.without("/init_state/initialized")
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, "initialized must be a boolean, got missing")
}

test_initialized_null_denied if {
	outcome(fixtures.patched("/init_state/initialized", null)) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

test_initialized_as_string_denied if {
	outcome(fixtures.patched("/init_state/initialized", "false")) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

test_every_field_required if {
	every field in ["node_id", "cluster_id", "initialized", "last_index", "last_term"] {
		facts := fixtures.without(sprintf("/init_state/%s", [field]))
		"INIT_STATE_MALFORMED" in outcome(facts).deny
		not outcome(facts).allow
	}
}

test_wrong_types_listed_in_message if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/last_index", "value": "0"},
		{"op": "replace", "path": "/init_state/cluster_id", "value": null},
	])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, "cluster_id must be a string, got null, last_index must be a number, got string")
}

# --- state -------------------------------------------------------------------

test_already_initialized_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/initialized", "value": true},
		{"op": "replace", "path": "/init_state/cluster_id", "value": "9a1"},
		{"op": "replace", "path": "/init_state/last_index", "value": 42},
		{"op": "replace", "path": "/init_state/last_term", "value": 3},
	])
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "EXISTING_RAFT_STATE"})
	some msg in deny_messages(facts, "ALREADY_INITIALIZED")
	contains(msg, `candidate n4 is already initialized (cluster_id "9a1")`)
	some state in deny_messages(facts, "EXISTING_RAFT_STATE")
	contains(state, `(cluster_id "9a1", last_index 42, last_term 3) although initialized is true`)
}

# A node that says it is initialized is denied even with no other state to show.
test_initialized_flag_alone_denied if {
	outcome(fixtures.patched("/init_state/initialized", true)) == fixtures.denied({"ALREADY_INITIALIZED"})
}

# Existing state denies whatever the initialized flag says.
test_uninitialized_with_cluster_id_denied if {
	facts := fixtures.patched("/init_state/cluster_id", "9a1")
	outcome(facts) == fixtures.denied({"EXISTING_RAFT_STATE"})
	some msg in deny_messages(facts, "EXISTING_RAFT_STATE")
	contains(msg, `candidate n4 has existing raft state (cluster_id "9a1") although initialized is false`)
}

test_uninitialized_with_log_denied if {
	outcome(fixtures.patched("/init_state/last_index", 7)) == fixtures.denied({"EXISTING_RAFT_STATE"})
	outcome(fixtures.patched("/init_state/last_term", 1)) == fixtures.denied({"EXISTING_RAFT_STATE"})
}

test_existing_state_reported_even_when_initialized_missing if {
	facts := json.patch(fixtures.good, [
		{"op": "remove", "path": "/init_state/initialized"},
		{"op": "replace", "path": "/init_state/last_term", "value": 2},
	])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED", "EXISTING_RAFT_STATE"})
	some msg in deny_messages(facts, "EXISTING_RAFT_STATE")
	contains(msg, "although initialized is ?")
}

# --- sources -----------------------------------------------------------------

test_raft_only_candidate_allowed if {
	outcome(fixtures.raft_only) == fixtures.allowed
}

test_sources_required if {
	facts := fixtures.without("/init_state/sources")
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, "sources must be an array, got missing")
	outcome(fixtures.patched("/init_state/sources", "raft")) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

# The raft server always answers for itself: facts from the API alone
# prove nothing about its raft state.
test_sources_without_raft_denied if {
	facts := fixtures.patched("/init_state/sources", ["api"])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, `sources must list "raft", got ["api"]`)
	outcome(fixtures.raft_only_patched("/init_state/sources", [])) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

test_unknown_source_denied if {
	facts := fixtures.patched("/init_state/sources", ["raft", "api", "gossip"])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, `sources[2] must be "raft" or "api", got "gossip"`)
}

# A candidate with an API must have been asked through it too.
test_api_source_missing_denied if {
	facts := fixtures.patched("/init_state/sources", ["raft"])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, `sources must list "api" for a candidate with api_url http://127.0.0.1:7430, got ["raft"]`)
}

test_api_source_without_api_url_denied if {
	facts := fixtures.raft_only_patched("/init_state/sources", ["raft", "api"])
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, `sources lists "api", but the candidate has no api_url`)
}

# Without the API, the top-level fields are the raft answer's.
test_raft_only_node_id_must_be_raft_id if {
	facts := fixtures.raft_only_patched("/init_state/node_id", "n5")
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED", "NODE_ID_MISMATCH"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, `node_id "n5" must be raft.id "n4" when the API is not among sources`)
}

# --- raft answer -------------------------------------------------------------

test_raft_answer_missing_denied if {
	facts := fixtures.without("/init_state/raft")
	outcome(facts) == fixtures.denied({"INIT_STATE_MALFORMED"})
	some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
	contains(msg, "raft must be an object, got missing")
	outcome(fixtures.patched("/init_state/raft", [])) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

test_raft_answer_fields_required if {
	every field, want in data.admitd.stages.init_state.raft_schema {
		facts := fixtures.without(sprintf("/init_state/raft/%s", [field]))
		"INIT_STATE_MALFORMED" in outcome(facts).deny
		not outcome(facts).allow
		some msg in deny_messages(facts, "INIT_STATE_MALFORMED")
		contains(msg, sprintf("raft.%s must be %s, got missing", [field, data.admitd.stages.init_state.a_kind(want)]))
	}
}

# "7" > 0 in Rego's ordering of values: a term must be a number to count.
test_raft_term_as_string_is_malformed_only if {
	outcome(fixtures.raft_only_patched("/init_state/raft/term", "7")) == fixtures.denied({"INIT_STATE_MALFORMED"})
	outcome(fixtures.raft_only_patched("/init_state/raft/granted", "true")) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

# --- raft signals, each alone ------------------------------------------------

# signal_alone is raft_only with these raft fields replaced and the
# top-level fields left fresh, so only the raft signal can deny.
signal_alone(fields) := fixtures.raft_only_patched("/init_state/raft", object.union(fixtures.raft_only.init_state.raft, fields))

test_raft_term_alone_denied if {
	facts := signal_alone({"term": 7})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED"})
	deny_messages(facts, "ALREADY_INITIALIZED") == {"candidate n4: the raft server at 127.0.0.1:7431 answers at term 7, so it has taken part in an election; only a fresh node can join: wipe its data directory or remove it from its old cluster first"}
}

test_raft_prevote_refused_alone_denied if {
	facts := signal_alone({"granted": false})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED"})
	deny_messages(facts, "ALREADY_INITIALIZED") == {"candidate n4: the raft server at 127.0.0.1:7431 refused a term-0 pre-vote, which only a server with raft state does; only a fresh node can join: wipe its data directory or remove it from its old cluster first"}
}

test_raft_last_index_alone_denied if {
	facts := signal_alone({"last_index": 12, "last_index_known": true})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED"})
	deny_messages(facts, "ALREADY_INITIALIZED") == {"candidate n4: the raft server at 127.0.0.1:7431 has a raft log up to index 12; only a fresh node can join: wipe its data directory or remove it from its old cluster first"}
}

# A last index is only a fact when the raft server reported one.
test_raft_last_index_unknown_ignored if {
	outcome(signal_alone({"last_index": 12, "last_index_known": false})) == fixtures.allowed
	outcome(signal_alone({"last_index": 0, "last_index_known": true})) == fixtures.allowed
}

# A raft-only candidate with state, its top-level fields derived from the
# raft answer as the collector does: every sign denies.
test_raft_only_with_state_denied if {
	facts := json.patch(fixtures.raft_only, [
		{"op": "replace", "path": "/init_state/raft", "value": fixtures.raft_with_state},
		{"op": "replace", "path": "/init_state/initialized", "value": true},
		{"op": "replace", "path": "/init_state/last_index", "value": 42},
	])
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "EXISTING_RAFT_STATE"})
	count(deny_messages(facts, "ALREADY_INITIALIZED")) == 4
}

# --- contradictions ----------------------------------------------------------

# api_fresh_raft(fields) is good, whose API says fresh, with these raft fields.
api_fresh_raft(fields) := fixtures.patched("/init_state/raft", object.union(fixtures.good.init_state.raft, fields))

test_api_fresh_raft_term_contradiction_denied if {
	facts := api_fresh_raft({"term": 7})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "INIT_STATE_CONTRADICTION"})
	deny_messages(facts, "INIT_STATE_CONTRADICTION") == {"candidate n4: the API at http://127.0.0.1:7430 says fresh, but the raft server at 127.0.0.1:7431 answers at term 7; api_url and raft_addr may point at different nodes, or the node misreports its state: check both belong to one fresh node"}
}

test_api_fresh_raft_prevote_refused_contradiction_denied if {
	facts := api_fresh_raft({"granted": false})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "INIT_STATE_CONTRADICTION"})
	some msg in deny_messages(facts, "INIT_STATE_CONTRADICTION")
	contains(msg, "says fresh, but the raft server at 127.0.0.1:7431 refuses a term-0 pre-vote;")
}

test_api_fresh_raft_last_index_contradiction_denied if {
	facts := api_fresh_raft({"last_index": 12, "last_index_known": true})
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "INIT_STATE_CONTRADICTION"})
	some msg in deny_messages(facts, "INIT_STATE_CONTRADICTION")
	contains(msg, "says fresh, but the raft server at 127.0.0.1:7431 has a log up to index 12;")
}

test_api_fresh_raft_with_state_names_every_sign if {
	facts := fixtures.patched("/init_state/raft", fixtures.raft_with_state)
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED", "INIT_STATE_CONTRADICTION"})
	some msg in deny_messages(facts, "INIT_STATE_CONTRADICTION")
	contains(msg, "answers at term 7, has a log up to index 42, refuses a term-0 pre-vote;")
}

# An API that admits state agrees with a raft server that shows it: no
# contradiction, only the state.
test_api_with_state_no_contradiction if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/initialized", "value": true},
		{"op": "replace", "path": "/init_state/raft", "value": fixtures.raft_with_state},
	])
	outcome(facts) == fixtures.denied({"ALREADY_INITIALIZED"})
}

test_api_and_raft_ids_differ_denied if {
	facts := fixtures.patched("/init_state/raft/id", "n5")
	outcome(facts) == fixtures.denied({"INIT_STATE_CONTRADICTION"})
	deny_messages(facts, "INIT_STATE_CONTRADICTION") == {`candidate n4: the API at http://127.0.0.1:7430 reports node_id "n4", but the raft server at 127.0.0.1:7431 answers as "n5"; api_url and raft_addr point at different nodes: fix the request so both name the candidate`}
}

# --- identity ----------------------------------------------------------------

# The node at both addresses is n5: its API and its raft server agree, and
# both are not the candidate.
test_node_id_mismatch_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/node_id", "value": "n5"},
		{"op": "replace", "path": "/init_state/raft/id", "value": "n5"},
	])
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH"})
	some msg in deny_messages(facts, "NODE_ID_MISMATCH")
	contains(msg, `the node at http://127.0.0.1:7430 reports node_id "n5", but the admission asks for candidate id "n4"; check the request's id and api_url`)
}

# The API at api_url is n5's while the raft server at raft_addr answers as
# n4: the request's addresses point at two nodes.
test_node_id_mismatch_with_raft_answering_as_candidate_denied if {
	facts := fixtures.patched("/init_state/node_id", "n5")
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH", "INIT_STATE_CONTRADICTION"})
}

test_empty_node_id_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/node_id", "value": ""},
		{"op": "replace", "path": "/init_state/raft/id", "value": ""},
		{"op": "replace", "path": "/candidate/id", "value": ""},
	])
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH"})
}

test_candidate_id_missing_denied if {
	facts := fixtures.without("/candidate/id")
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH"})
	some msg in deny_messages(facts, "NODE_ID_MISMATCH")
	contains(msg, `candidate id "<no id>"`)
}

# Without an API, the raft server is the one that names itself.
test_raft_only_node_id_mismatch_message if {
	facts := json.patch(fixtures.raft_only, [
		{"op": "replace", "path": "/init_state/node_id", "value": "n5"},
		{"op": "replace", "path": "/init_state/raft/id", "value": "n5"},
	])
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH"})
	deny_messages(facts, "NODE_ID_MISMATCH") == {`the raft server at 127.0.0.1:7431 reports node_id "n5", but the admission asks for candidate id "n4"; check the request's id and raft_addr`}
}

test_node_id_wrong_type_denied if {
	outcome(fixtures.patched("/init_state/node_id", 4)) == fixtures.denied({"INIT_STATE_MALFORMED"})
}

# --- TLS identity ------------------------------------------------------------

# The TLS identity is the reachability stage's: this stage neither denies
# nor withholds allow over it (reachability_test.rego has its tests).
test_tls_identity_not_checked_here if {
	every facts in [
		fixtures.without("/reachability/api/tls"),
		fixtures.patched("/reachability/api/tls/enabled", "false"),
		fixtures.patched("/reachability/api/tls", {
			"enabled": true, "verified": true,
			"uris": ["spiffe://prod.example/admitd/n5"], "dns_names": [], "error": "",
		}),
	] {
		outcome(facts) == fixtures.allowed
	}
}

# --- fail closed -------------------------------------------------------------

# Even if every deny rule were deleted, allow needs its own proof.
test_allow_requires_proof_without_deny_rules if {
	every facts in [
		fixtures.without("/init_state/initialized"),
		fixtures.patched("/init_state/initialized", true),
		fixtures.patched("/init_state/cluster_id", "9a1"),
		fixtures.patched("/init_state/last_index", 1),
		fixtures.patched("/init_state/last_term", 1),
		fixtures.patched("/init_state/node_id", "n5"),
		fixtures.patched("/init_state/collected", false),
		fixtures.without("/init_state"),
		fixtures.without("/init_state/sources"),
		fixtures.patched("/init_state/sources", ["api"]),
		fixtures.patched("/init_state/sources", ["raft"]),
		fixtures.patched("/init_state/sources", ["raft", "api", "gossip"]),
		fixtures.raft_only_patched("/init_state/sources", ["raft", "api"]),
		fixtures.raft_only_patched("/init_state/node_id", "n5"),
		fixtures.without("/init_state/raft"),
		fixtures.without("/init_state/raft/last_index_known"),
		signal_alone({"term": 7}),
		signal_alone({"granted": false}),
		signal_alone({"last_index": 12, "last_index_known": true}),
		api_fresh_raft({"term": 7}),
		fixtures.patched("/init_state/raft/id", "n5"),
	] {
		data.admitd.stages.init_state.allow == false with input as facts
			with data.admitd.stages.init_state.deny as set()
	}
}

test_raft_only_not_collected_message if {
	facts := fixtures.raft_only_patched("/init_state/collected", false)
	outcome(facts) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	some msg in deny_messages(facts, "INIT_STATE_NOT_COLLECTED")
	contains(msg, "check that the raft server at 127.0.0.1:7431 answers, then retry")
	some m in deny_messages(fixtures.patched("/init_state/collected", false), "INIT_STATE_NOT_COLLECTED")
	contains(m, "check that http://127.0.0.1:7430 serves GET /v1/state and the raft server at 127.0.0.1:7431 answers, then retry")
}

test_messages_survive_garbage_input if {
	facts := {"candidate": [], "init_state": {"collected": "no", "error": 5}}
	outcome(facts) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	some msg in deny_messages(facts, "INIT_STATE_NOT_COLLECTED")
	contains(msg, "candidate <no id>: init state was not collected (no error reported); check that <no api_url> serves")
}
