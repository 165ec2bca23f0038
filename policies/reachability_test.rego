# Tests for the reachability stage. Each test derives its facts from
# fixtures.good and checks the whole outcome: allow, deny codes, warn codes.
package admitd.stages.reachability_test

import data.admitd.fixtures

outcome(facts) := fixtures.summary(pkg) if {
	pkg := data.admitd.stages.reachability with input as facts
}

deny_messages(facts, code) := fixtures.messages(pkg, "deny", code) if {
	pkg := data.admitd.stages.reachability with input as facts
}

# --- allow -------------------------------------------------------------------

test_good_facts_allowed if {
	outcome(fixtures.good) == fixtures.allowed
}

test_any_2xx_status_allowed if {
	outcome(fixtures.patched("/reachability/api/status", 204)) == fixtures.allowed
}

test_one_successful_handshake_is_enough if {
	outcome(fixtures.patched("/reachability/raft/successes", 1)) == fixtures.allowed
}

# --- candidate ---------------------------------------------------------------

test_candidate_missing_denied if {
	outcome(fixtures.without("/candidate")) == fixtures.denied({"CANDIDATE_MALFORMED"})
}

test_candidate_fields_must_be_non_empty_strings if {
	every field, value in {"id": "", "raft_addr": 7431, "api_url": null} {
		facts := fixtures.patched(sprintf("/candidate/%s", [field]), value)
		outcome(facts) == fixtures.denied({"CANDIDATE_MALFORMED"})
	}
}

test_candidate_malformed_message_shows_candidate if {
	some msg in deny_messages(fixtures.patched("/candidate/id", ""), "CANDIDATE_MALFORMED")
	contains(msg, `"raft_addr":"127.0.0.1:7431"`)
}

# --- section -----------------------------------------------------------------

test_section_missing_denied if {
	facts := fixtures.without("/reachability")
	outcome(facts) == fixtures.denied({"REACHABILITY_MISSING"})
	some msg in deny_messages(facts, "REACHABILITY_MISSING")
	contains(msg, "candidate n4")
}

test_section_not_an_object_denied if {
	outcome(fixtures.patched("/reachability", "ok")) == fixtures.denied({"REACHABILITY_MISSING"})
}

test_not_collected_denied_with_collector_error if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/reachability/collected", "value": false},
		{"op": "replace", "path": "/reachability/error", "value": "collector timed out after 2s"},
	])
	outcome(facts) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
	some msg in deny_messages(facts, "REACHABILITY_NOT_COLLECTED")
	contains(msg, "collector timed out after 2s")
	contains(msg, "127.0.0.1:7431")
}

# A collector that failed says nothing else: its probes are ignored, even if they look fine.
test_not_collected_ignores_probes if {
	facts := fixtures.patched("/reachability/collected", false)
	outcome(facts) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
	some msg in deny_messages(facts, "REACHABILITY_NOT_COLLECTED")
	contains(msg, "no error reported")
}

# collected must be the boolean true: a missing field or a truthy string is not proof.
test_collected_must_be_true if {
	outcome(fixtures.without("/reachability/collected")) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
	outcome(fixtures.patched("/reachability/collected", "true")) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
}

# --- malformed ---------------------------------------------------------------

test_raft_probe_missing_denied if {
	facts := fixtures.without("/reachability/raft")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "raft must be an object, got missing")
}

test_api_probe_wrong_type_denied if {
	facts := fixtures.patched("/reachability/api", [])
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "api must be an object, got array")
}

test_probe_fields_wrong_type_denied if {
	# ok as a string is neither proof of reachability nor a well-formed probe.
	facts := fixtures.patched("/reachability/raft/ok", "true")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED", "RAFT_UNREACHABLE"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "raft.ok must be a boolean, got string")
}

test_status_as_string_denied if {
	# "200" > 199 in Rego's ordering of values: the policy must check the type.
	facts := fixtures.patched("/reachability/api/status", "200")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED", "API_BAD_STATUS"})
}

test_probe_field_missing_denied if {
	facts := fixtures.without("/reachability/api/error")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "api.error must be a string, got missing")
}

# --- raft --------------------------------------------------------------------

test_raft_unreachable_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/reachability/raft/ok", "value": false},
		{"op": "replace", "path": "/reachability/raft/successes", "value": 0},
		{"op": "replace", "path": "/reachability/raft/error", "value": "dial tcp 127.0.0.1:7431: connection refused"},
	])
	outcome(facts) == fixtures.denied({"RAFT_UNREACHABLE"})
	some msg in deny_messages(facts, "RAFT_UNREACHABLE")
	contains(msg, "raft address 127.0.0.1:7431 is unreachable (0 of 3 TCP handshakes succeeded")
	contains(msg, "connection refused")
}

# ok without a single successful handshake is not proof.
test_raft_ok_without_successes_denied if {
	facts := fixtures.patched("/reachability/raft/successes", 0)
	outcome(facts) == fixtures.denied({"RAFT_UNREACHABLE"})
	some msg in deny_messages(facts, "RAFT_UNREACHABLE")
	contains(msg, "error: none reported")
}

test_raft_successes_missing_denied if {
	facts := fixtures.without("/reachability/raft/successes")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED", "RAFT_UNREACHABLE"})
	some msg in deny_messages(facts, "RAFT_UNREACHABLE")
	contains(msg, "(? of 3 TCP handshakes")
}

# --- api ---------------------------------------------------------------------

test_api_unreachable_denied if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/reachability/api/ok", "value": false},
		{"op": "replace", "path": "/reachability/api/status", "value": 0},
		{"op": "replace", "path": "/reachability/api/error", "value": "context deadline exceeded"},
	])

	# API_BAD_STATUS is not reported on top: a failed call has no status.
	outcome(facts) == fixtures.denied({"API_UNREACHABLE"})
	some msg in deny_messages(facts, "API_UNREACHABLE")
	contains(msg, "API http://127.0.0.1:7430 is unreachable (error: context deadline exceeded)")
}

test_api_ok_missing_denied if {
	outcome(fixtures.without("/reachability/api/ok")) == fixtures.denied({"REACHABILITY_MALFORMED", "API_UNREACHABLE"})
}

test_api_bad_status_denied if {
	every status in [100, 199, 300, 404, 500, 503] {
		facts := fixtures.patched("/reachability/api/status", status)
		outcome(facts) == fixtures.denied({"API_BAD_STATUS"})
	}
}

test_api_bad_status_message_names_status if {
	some msg in deny_messages(fixtures.patched("/reachability/api/status", 503), "API_BAD_STATUS")
	contains(msg, "answered with status 503, want 2xx")
}

test_api_status_missing_denied if {
	facts := fixtures.without("/reachability/api/status")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED", "API_BAD_STATUS"})
	some msg in deny_messages(facts, "API_BAD_STATUS")
	contains(msg, "status ?")
}

# --- fail closed -------------------------------------------------------------

# Even if every deny rule were deleted, allow needs its own proof.
test_allow_requires_proof_without_deny_rules if {
	every facts in [
		fixtures.without("/reachability"),
		fixtures.patched("/reachability/collected", false),
		fixtures.patched("/reachability/raft/ok", false),
		fixtures.patched("/reachability/raft/successes", 0),
		fixtures.patched("/reachability/api/ok", false),
		fixtures.patched("/reachability/api/status", 500),
		fixtures.patched("/reachability/api/status", "200"),
		fixtures.patched("/candidate/api_url", ""),
	] {
		data.admitd.stages.reachability.allow == false with input as facts
			with data.admitd.stages.reachability.deny as set()
	}
}

# Builtins that return undefined on bad input must not break message building.
test_messages_survive_garbage_input if {
	facts := {"candidate": 1, "reachability": {"collected": true, "error": 2, "raft": {}, "api": {"ok": true}}}
	outcome(facts) == fixtures.denied({
		"CANDIDATE_MALFORMED", "REACHABILITY_MALFORMED",
		"RAFT_UNREACHABLE", "API_BAD_STATUS",
	})
	some msg in deny_messages(facts, "RAFT_UNREACHABLE")
	contains(msg, "candidate <no id>: raft address <no raft_addr>")
}

test_not_collected_without_candidate if {
	facts := {"reachability": {"collected": false}}
	some msg in deny_messages(facts, "REACHABILITY_NOT_COLLECTED")
	contains(msg, "<no raft_addr> and <no api_url>")
	some m in deny_messages(facts, "CANDIDATE_MALFORMED")
	contains(m, "got nothing")
}
