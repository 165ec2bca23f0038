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

# --- identity ----------------------------------------------------------------

test_node_id_mismatch_denied if {
	facts := fixtures.patched("/init_state/node_id", "n5")
	outcome(facts) == fixtures.denied({"NODE_ID_MISMATCH"})
	some msg in deny_messages(facts, "NODE_ID_MISMATCH")
	contains(msg, `the node at http://127.0.0.1:7430 reports node_id "n5", but the admission asks for candidate id "n4"`)
}

test_empty_node_id_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/init_state/node_id", "value": ""},
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
	] {
		data.admitd.stages.init_state.allow == false with input as facts
			with data.admitd.stages.init_state.deny as set()
	}
}

test_messages_survive_garbage_input if {
	facts := {"candidate": [], "init_state": {"collected": "no", "error": 5}}
	outcome(facts) == fixtures.denied({"INIT_STATE_NOT_COLLECTED"})
	some msg in deny_messages(facts, "INIT_STATE_NOT_COLLECTED")
	contains(msg, "candidate <no id>: init state was not collected (no error reported); check that <no api_url> serves")
}
