# Tests for the catch_up stage. Each test derives its facts from
# fixtures.promote and checks the whole outcome: allow, deny codes, warn
# codes. The thresholds are the tests' own (fixtures.catch_up_settings).
package admitd.stages.catch_up_test

import data.admitd.fixtures

outcome(facts) := outcome_with(facts, fixtures.catch_up_settings)

outcome_with(facts, settings) := fixtures.summary(pkg) if {
	pkg := data.admitd.stages.catch_up with input as facts
		with data.admitd.settings.catch_up as settings
}

messages(facts, code) := messages_with(facts, fixtures.catch_up_settings, code)

messages_with(facts, settings, code) := fixtures.messages(pkg, "deny", code) if {
	pkg := data.admitd.stages.catch_up with input as facts
		with data.admitd.settings.catch_up as settings
}

# with_catch_up is fixtures.promote with these catch_up fields replaced.
with_catch_up(fields) := fixtures.promote_patched("/catch_up", object.union(fixtures.promote.catch_up, fields))

settings_with(fields) := object.union(fixtures.catch_up_settings, fields)

# --- allow -------------------------------------------------------------------

test_caught_up_candidate_allowed if {
	outcome(fixtures.promote) == fixtures.allowed
}

# A candidate ahead of the leader's reading (it appended after it) trails by 0.
test_candidate_ahead_allowed if {
	outcome(with_catch_up({"last_index": 5020, "lag": 0})) == fixtures.allowed
}

test_thresholds_are_inclusive if {
	outcome(with_catch_up({"last_index": 4762, "lag": 250, "last_contact_ms": 200, "healthy_for_ms": 10000})) == fixtures.allowed
	outcome(with_catch_up({"last_contact_ms": 0})) == fixtures.allowed
}

# The shipped settings are usable, whatever values a site gives them.
test_shipped_settings_well_formed if {
	pkg := data.admitd.stages.catch_up with input as fixtures.promote
	pkg.settings_well_typed
	count(pkg.settings_malformed) == 0
}

# --- phase -------------------------------------------------------------------

test_admit_phase_denied if {
	facts := fixtures.promote_patched("/phase", "admit")
	outcome(facts) == fixtures.denied({"PHASE_MISMATCH"})
	some msg in messages(facts, "PHASE_MISMATCH")
	contains(msg, `candidate n4: the catch_up stage only decides promotions, but the facts' phase is "admit"`)
}

# No phase is an admission, never a promotion.
test_missing_phase_denied if {
	facts := fixtures.promote_without("/phase")
	outcome(facts) == fixtures.denied({"PHASE_MISMATCH"})
	some msg in messages(facts, "PHASE_MISMATCH")
	contains(msg, "the facts' phase is missing")
}

# --- section -----------------------------------------------------------------

test_section_missing_denied if {
	facts := fixtures.promote_without("/catch_up")
	outcome(facts) == fixtures.denied({"CATCH_UP_MISSING"})
	some msg in messages(facts, "CATCH_UP_MISSING")
	contains(msg, "candidate n4: the facts have no catch_up section")
}

test_section_not_an_object_denied if {
	outcome(fixtures.promote_patched("/catch_up", [])) == fixtures.denied({"CATCH_UP_MISSING"})
}

test_not_collected_denied_with_collector_error if {
	facts := with_catch_up({"collected": false, "error": "context deadline exceeded"})
	outcome(facts) == fixtures.denied({"CATCH_UP_NOT_COLLECTED"})
	some msg in messages(facts, "CATCH_UP_NOT_COLLECTED")
	contains(msg, "(context deadline exceeded); check that http://127.0.0.1:7430 serves GET /v1/state")
}

# A failed collector's other fields are meaningless: a lag of 0 proves nothing.
test_not_collected_ignores_other_fields if {
	facts := with_catch_up({"collected": false, "last_index": 0, "lag": "garbage"})
	outcome(facts) == fixtures.denied({"CATCH_UP_NOT_COLLECTED"})
	some msg in messages(facts, "CATCH_UP_NOT_COLLECTED")
	contains(msg, "no error reported")
}

test_collected_must_be_true if {
	outcome(fixtures.promote_without("/catch_up/collected")) == fixtures.denied({"CATCH_UP_NOT_COLLECTED"})
	outcome(with_catch_up({"collected": "true"})) == fixtures.denied({"CATCH_UP_NOT_COLLECTED"})
}

# --- malformed ---------------------------------------------------------------

test_every_field_required if {
	every field, want in data.admitd.stages.catch_up.schema {
		facts := fixtures.promote_without(sprintf("/catch_up/%s", [field]))
		outcome(facts) == fixtures.denied({"CATCH_UP_MALFORMED"})
		some msg in messages(facts, "CATCH_UP_MALFORMED")
		contains(msg, sprintf("%s must be %s, got missing", [field, data.admitd.stages.catch_up.a_kind(want)]))
	}
}

test_field_of_wrong_type_denied if {
	facts := with_catch_up({"last_contact_ms": "35.2"})
	outcome(facts) == fixtures.denied({"CATCH_UP_MALFORMED"})
	some msg in messages(facts, "CATCH_UP_MALFORMED")
	contains(msg, "last_contact_ms must be a number, got string; this is a collector bug")
}

# The leader's raft probe of a candidate without an API feeds the same rules.
test_raft_source_allowed if {
	outcome(with_catch_up({"sources": ["raft"], "last_contact_ms": 0.4})) == fixtures.allowed
	outcome(with_catch_up({"sources": ["raft"], "last_term": 2})) == fixtures.denied({"STALE_TERM"})
}

test_sources_must_name_known_sources if {
	every sources in [[], ["gossip"], ["api", "x"], [1]] {
		outcome(with_catch_up({"sources": sources})) == fixtures.denied({"CATCH_UP_MALFORMED"})
	}
	some msg in messages(with_catch_up({"sources": []}), "CATCH_UP_MALFORMED")
	contains(msg, `sources must list where the candidate's side came from ("api" or "raft"), got []`)
	some m in messages(with_catch_up({"sources": ["api", "x"]}), "CATCH_UP_MALFORMED")
	contains(m, `sources[1] must be "api" or "raft", got "x"`)
	some t in messages(with_catch_up({"sources": "api"}), "CATCH_UP_MALFORMED")
	contains(t, "sources must be an array, got string")
}

test_raft_only_not_collected_message if {
	facts := json.patch(fixtures.promote, [
		{"op": "replace", "path": "/candidate/api_url", "value": ""},
		{"op": "replace", "path": "/catch_up/collected", "value": false},
	])
	some msg in messages(facts, "CATCH_UP_NOT_COLLECTED")
	contains(msg, "check that the raft server at 127.0.0.1:7431 answers the leader's probe and the cluster has a leader, then retry")
}

# Zeros are a collector that filled nothing in, not a caught-up candidate.
test_leader_without_term_or_log_denied if {
	facts := with_catch_up({"leader_last_index": 0, "leader_term": 0, "last_index": 0, "last_term": 0, "lag": 0})
	outcome(facts) == fixtures.denied({"CATCH_UP_MALFORMED"})
	some msg in messages(facts, "CATCH_UP_MALFORMED")
	contains(msg, "leader_last_index must be at least 1 for a cluster with a leader, got 0, leader_term must be at least 1")
}

# The lag is computed from the indexes; a reported lag that disagrees is a
# collector bug, not a number to trust.
test_lag_must_agree_with_indexes if {
	facts := with_catch_up({"lag": 0, "last_index": 4000})
	outcome(facts) == fixtures.denied({"CATCH_UP_MALFORMED", "LAGGING"})
	some msg in messages(facts, "CATCH_UP_MALFORMED")
	contains(msg, "lag 0 disagrees with leader_last_index - last_index (1012)")
	outcome(with_catch_up({"lag": 7})) == fixtures.denied({"CATCH_UP_MALFORMED"})
}

# --- settings ----------------------------------------------------------------

test_settings_not_an_object_denied if {
	facts := fixtures.promote
	outcome_with(facts, "250") == fixtures.denied({"CATCH_UP_MALFORMED"})
	some msg in messages_with(facts, "250", "CATCH_UP_MALFORMED")
	contains(msg, "malformed catch-up settings: settings.catch_up must be an object; fix data.admitd.settings.catch_up")
}

test_settings_fields_required if {
	every name in data.admitd.stages.catch_up.setting_names {
		settings := object.remove(fixtures.catch_up_settings, [name])
		outcome_with(fixtures.promote, settings) == fixtures.denied({"CATCH_UP_MALFORMED"})
		some msg in messages_with(fixtures.promote, settings, "CATCH_UP_MALFORMED")
		contains(msg, sprintf("%s must be a number of at least 0, got null", [name]))
	}
}

test_settings_negative_or_string_denied if {
	negative := settings_with({"max_last_contact_ms": -1})
	outcome_with(fixtures.promote, negative) == fixtures.denied({"CATCH_UP_MALFORMED"})
	some msg in messages_with(fixtures.promote, negative, "CATCH_UP_MALFORMED")
	contains(msg, "max_last_contact_ms must be a number of at least 0, got -1")
	outcome_with(fixtures.promote, settings_with({"min_healthy_ms": "10s"})) == fixtures.denied({"CATCH_UP_MALFORMED"})
}

# Bad settings are reported whatever the facts, next to their own denies.
test_settings_malformed_reported_with_missing_facts if {
	facts := fixtures.promote_without("/catch_up")
	outcome_with(facts, {}) == fixtures.denied({"CATCH_UP_MISSING", "CATCH_UP_MALFORMED"})
}

test_thresholds_come_from_settings if {
	outcome_with(fixtures.promote, settings_with({"max_lag_entries": 1})) == fixtures.denied({"LAGGING"})
	outcome_with(fixtures.promote, settings_with({"max_last_contact_ms": 30})) == fixtures.denied({"NO_RECENT_CONTACT"})
	outcome_with(fixtures.promote, settings_with({"min_healthy_ms": 60000})) == fixtures.denied({"NOT_STABLE"})
	outcome_with(with_catch_up({"healthy_for_ms": 0}), settings_with({"min_healthy_ms": 0})) == fixtures.allowed
}

# --- lag ---------------------------------------------------------------------

test_lagging_denied if {
	facts := with_catch_up({"last_index": 4761, "lag": 251})
	outcome(facts) == fixtures.denied({"LAGGING"})
	some msg in messages(facts, "LAGGING")
	contains(msg, "candidate n4 trails the leader by 251 log entries (its last_index 4761, the leader's 5012), more than max_lag_entries 250; wait for it to catch up")
}

# --- term --------------------------------------------------------------------

# Close by index but without the leader's no-op: not caught up with this leader.
test_stale_term_denied if {
	facts := with_catch_up({"last_term": 2})
	outcome(facts) == fixtures.denied({"STALE_TERM"})
	some msg in messages(facts, "STALE_TERM")
	contains(msg, "candidate n4: its last log entry is of term 2, the leader's term is 3")
}

test_term_ahead_of_leader_denied if {
	outcome(with_catch_up({"last_term": 4})) == fixtures.denied({"STALE_TERM"})
}

# --- contact -----------------------------------------------------------------

test_never_contacted_denied if {
	facts := with_catch_up({"last_contact_ms": -1})
	outcome(facts) == fixtures.denied({"NO_RECENT_CONTACT"})
	some msg in messages(facts, "NO_RECENT_CONTACT")
	contains(msg, "candidate n4 has never heard from the leader, more than max_last_contact_ms 200 allows; check the leader reaches it at 127.0.0.1:7431")
}

test_stale_contact_denied if {
	facts := with_catch_up({"last_contact_ms": 250.5})
	outcome(facts) == fixtures.denied({"NO_RECENT_CONTACT"})
	some msg in messages(facts, "NO_RECENT_CONTACT")
	contains(msg, "candidate n4 last heard from the leader 251 ms ago, more than max_last_contact_ms 200 allows")
}

# --- stability ---------------------------------------------------------------

test_not_stable_denied if {
	facts := with_catch_up({"healthy_for_ms": 9000.5})
	outcome(facts) == fixtures.denied({"NOT_STABLE"})
	some msg in messages(facts, "NOT_STABLE")
	contains(msg, "the leader has seen candidate n4 healthy for 9001 ms, less than min_healthy_ms 10000; retry the promotion in 1000 ms")
}

# --- together ----------------------------------------------------------------

test_every_shortfall_reported if {
	facts := with_catch_up({
		"last_index": 10, "last_term": 1, "lag": 5002,
		"last_contact_ms": -1, "healthy_for_ms": 0,
	})
	outcome(facts) == fixtures.denied({"LAGGING", "STALE_TERM", "NO_RECENT_CONTACT", "NOT_STABLE"})
}

# --- fail closed -------------------------------------------------------------

# Even if every deny rule were deleted, allow needs its own proof.
test_allow_requires_proof_without_deny_rules if {
	every facts in [
		fixtures.promote_without("/catch_up"),
		fixtures.promote_patched("/phase", "admit"),
		with_catch_up({"collected": false}),
		with_catch_up({"lag": "2"}),
		with_catch_up({"lag": 7}),
		with_catch_up({"last_index": 4000, "lag": 1012}),
		with_catch_up({"last_term": 2}),
		with_catch_up({"last_contact_ms": -1}),
		with_catch_up({"last_contact_ms": 201}),
		with_catch_up({"healthy_for_ms": 9999}),
		with_catch_up({"sources": []}),
		with_catch_up({"sources": ["gossip"]}),
		fixtures.promote_without("/catch_up/sources"),
	] {
		data.admitd.stages.catch_up.allow == false with input as facts
			with data.admitd.settings.catch_up as fixtures.catch_up_settings
			with data.admitd.stages.catch_up.deny as set()
	}
	data.admitd.stages.catch_up.allow == false with input as fixtures.promote
		with data.admitd.settings.catch_up as settings_with({"max_lag_entries": "250"})
		with data.admitd.stages.catch_up.deny as set()
}

test_empty_facts_denied if {
	outcome({}) == fixtures.denied({"PHASE_MISMATCH", "CATCH_UP_MISSING"})
}

test_messages_survive_garbage_input if {
	facts := {"phase": "promote", "candidate": "n4", "catch_up": {"collected": true, "lag": "2"}}
	outcome(facts) == fixtures.denied({"CATCH_UP_MALFORMED"})
	some msg in messages(facts, "CATCH_UP_MALFORMED")
	startswith(msg, "candidate <no id>: malformed catch_up facts: healthy_for_ms must be a number, got missing")
	some other in messages({"phase": "promote", "candidate": 4, "catch_up": {}}, "CATCH_UP_NOT_COLLECTED")
	contains(other, "check that <no api_url> serves GET /v1/state")
	some contact in messages({"phase": "promote", "candidate": {}, "catch_up": object.union(fixtures.promote.catch_up, {"last_contact_ms": -1})}, "NO_RECENT_CONTACT")
	contains(contact, "check the leader reaches it at <no raft_addr>")
}
