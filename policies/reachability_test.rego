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
	outcome(fixtures.patched("/candidate/raft_addr", "")) == fixtures.denied({"CANDIDATE_MALFORMED"})
}

# An api_url that is not a string is malformed, and does not excuse the
# API from being judged: only a stated "" means "no API".
test_candidate_api_url_must_be_a_string if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/candidate/api_url", "value": 7430},
		{"op": "replace", "path": "/reachability/api/status", "value": 503},
	])
	outcome(facts) == fixtures.denied({"CANDIDATE_MALFORMED", "API_BAD_STATUS"})
	some msg in deny_messages(facts, "CANDIDATE_MALFORMED")
	contains(msg, "candidate must have non-empty string id and raft_addr and a string api_url (empty for a candidate without an API)")
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

# --- raft rpc ----------------------------------------------------------------

test_raft_rpc_missing_denied if {
	facts := fixtures.without("/reachability/raft_rpc")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "raft_rpc must be an object, got missing")
}

test_raft_rpc_fields_wrong_type_denied if {
	# ok as a string is neither an answer nor a well-formed probe.
	facts := fixtures.patched("/reachability/raft_rpc/ok", "true")
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED", "RAFT_NOT_ANSWERING"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "raft_rpc.ok must be a boolean, got string")

	# An id that is not a string names nobody: malformed, not a mismatch.
	outcome(fixtures.patched("/reachability/raft_rpc/id", 4)) == fixtures.denied({"REACHABILITY_MALFORMED"})
	outcome(fixtures.without("/reachability/raft_rpc/id")) == fixtures.denied({"REACHABILITY_MALFORMED"})
}

# raft_not_answering is good with a TCP handshake that succeeded and no
# raft answer after it.
raft_not_answering := fixtures.patched("/reachability/raft_rpc", {
	"ok": false, "id": "", "rtt_ms": 0,
	"error": "read tcp 127.0.0.1:50122->127.0.0.1:7431: i/o timeout",
})

test_raft_not_answering_denied if {
	outcome(raft_not_answering) == fixtures.denied({"RAFT_NOT_ANSWERING"})
	some msg in deny_messages(raft_not_answering, "RAFT_NOT_ANSWERING")
	msg == "candidate n4: raft address 127.0.0.1:7431 accepts TCP connections, but no raft server answered a pre-vote there (error: read tcp 127.0.0.1:50122->127.0.0.1:7431: i/o timeout); check that the candidate's hashicorp/raft transport listens on that address and not another service, then retry"
}

test_raft_not_answering_without_error_denied if {
	facts := fixtures.patched("/reachability/raft_rpc/ok", false)
	outcome(facts) == fixtures.denied({"RAFT_NOT_ANSWERING"})
	some msg in deny_messages(facts, "RAFT_NOT_ANSWERING")
	contains(msg, "(error: none reported)")
}

# No TCP connection, so no raft answer either: reported once, as
# RAFT_UNREACHABLE.
test_raft_not_answering_not_reported_when_unreachable if {
	facts := json.patch(raft_not_answering, [
		{"op": "replace", "path": "/reachability/raft/ok", "value": false},
		{"op": "replace", "path": "/reachability/raft/successes", "value": 0},
	])
	outcome(facts) == fixtures.denied({"RAFT_UNREACHABLE"})
}

test_raft_id_mismatch_denied if {
	facts := fixtures.patched("/reachability/raft_rpc/id", "n5")
	outcome(facts) == fixtures.denied({"RAFT_ID_MISMATCH"})
	some msg in deny_messages(facts, "RAFT_ID_MISMATCH")
	msg == `candidate n4: a raft server answering as "n5" holds 127.0.0.1:7431, not the candidate "n4"; check the request's id and raft_addr, or move the other server off that address`
}

# A raft server that sends no id in its RPC header proves no identity.
test_raft_empty_id_denied if {
	facts := fixtures.patched("/reachability/raft_rpc/id", "")
	outcome(facts) == fixtures.denied({"RAFT_ID_MISMATCH"})
	some msg in deny_messages(facts, "RAFT_ID_MISMATCH")
	contains(msg, `a raft server answering as "" holds 127.0.0.1:7431`)
}

# A malformed candidate has no id to compare: CANDIDATE_MALFORMED alone.
test_raft_id_not_compared_for_malformed_candidate if {
	outcome(fixtures.patched("/candidate/id", "")) == fixtures.denied({"CANDIDATE_MALFORMED"})
	outcome(fixtures.without("/candidate")) == fixtures.denied({"CANDIDATE_MALFORMED"})
}

# The raft answer is checked at every promotion too.
test_promote_raft_id_mismatch_denied if {
	outcome(fixtures.promote_patched("/reachability/raft_rpc/id", "n5")) == fixtures.denied({"RAFT_ID_MISMATCH"})
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

# --- no api ------------------------------------------------------------------

# A candidate that runs only hashicorp/raft: no api_url, the API skipped.
test_raft_only_candidate_allowed if {
	outcome(fixtures.raft_only) == fixtures.allowed
}

# Nothing about a skipped API is judged: its ok, status and error say nothing.
test_raft_only_api_fields_not_judged if {
	outcome(fixtures.raft_only_patched("/reachability/api/status", 503)) == fixtures.allowed
	outcome(fixtures.raft_only_patched("/reachability/api/error", "not called")) == fixtures.allowed
}

test_raft_only_still_needs_raft_answer if {
	outcome(fixtures.raft_only_patched("/reachability/raft_rpc/id", "n5")) == fixtures.denied({"RAFT_ID_MISMATCH"})
	outcome(fixtures.raft_only_patched("/reachability/raft_rpc/ok", false)) == fixtures.denied({"RAFT_NOT_ANSWERING"})
}

# "skipped" is stated, never inferred from an empty api_url.
test_raft_only_api_not_skipped_denied if {
	facts := fixtures.raft_only_patched("/reachability/api/skipped", false)
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "api.skipped is false, but the candidate has no api_url: there was no API to call")
}

test_raft_only_skipped_missing_denied if {
	facts := json.patch(fixtures.raft_only, [{"op": "remove", "path": "/reachability/api/skipped"}])
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "api.skipped must be a boolean, got missing")
}

# An API that exists was not called: nothing about it is proven.
test_api_skipped_with_api_url_denied if {
	facts := fixtures.patched("/reachability/api/skipped", true)
	outcome(facts) == fixtures.denied({"REACHABILITY_MALFORMED"})
	some msg in deny_messages(facts, "REACHABILITY_MALFORMED")
	contains(msg, "api.skipped is true, but the candidate has api_url http://127.0.0.1:7430: its API was not called")
}

# With TLS on, a candidate without an API has no certificate to prove who
# it is, and its raft answer is no proof.
test_raft_only_with_tls_denied if {
	facts := fixtures.raft_only_patched("/reachability/api/tls", {
		"enabled": true, "verified": false, "uris": [], "dns_names": [], "error": "",
	})
	outcome(facts) == fixtures.denied({"IDENTITY_UNPROVEN"})
	some msg in deny_messages(facts, "IDENTITY_UNPROVEN")
	msg == "candidate n4 has no api_url, so no certificate can prove its identity, and this cluster runs with TLS (a raft answer can claim any id); give the candidate an API served over HTTPS with a certificate naming it (SAN URI spiffe://<trust domain>/admitd/n4 or DNS SAN n4) and set its api_url"
}

# Absence of tls is not "TLS off", with or without an API.
test_raft_only_tls_missing_denied if {
	facts := json.patch(fixtures.raft_only, [{"op": "remove", "path": "/reachability/api/tls"}])
	outcome(facts) == fixtures.denied({"IDENTITY_UNPROVEN"})
}

test_raft_only_not_collected_message if {
	facts := fixtures.raft_only_patched("/reachability/collected", false)
	outcome(facts) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
	some msg in deny_messages(facts, "REACHABILITY_NOT_COLLECTED")
	contains(msg, "check the candidate is running at 127.0.0.1:7431, then retry")
}

test_promote_raft_only_allowed if {
	facts := json.patch(fixtures.promote, [
		{"op": "replace", "path": "/candidate/api_url", "value": ""},
		{"op": "replace", "path": "/reachability/api", "value": fixtures.raft_only.reachability.api},
	])
	outcome(facts) == fixtures.allowed
}

# --- TLS identity ------------------------------------------------------------

# tls_facts is good with TLS on and a verified certificate carrying these SANs.
tls_facts(uris, dns_names) := fixtures.patched("/reachability/api/tls", tls_on(uris, dns_names))

# tls_on is a tls fact: TLS on and a verified certificate carrying these SANs.
tls_on(uris, dns_names) := {
	"enabled": true, "verified": true,
	"uris": uris, "dns_names": dns_names, "error": "",
}

test_tls_spiffe_uri_names_candidate_allowed if {
	outcome(tls_facts(["spiffe://prod.example/admitd/n4"], [])) == fixtures.allowed
	outcome(tls_facts(["https://other", "spiffe://test/admitd/n4"], ["x"])) == fixtures.allowed
}

test_tls_dns_name_names_candidate_allowed if {
	outcome(tls_facts([], ["n4"])) == fixtures.allowed
}

test_tls_other_id_denied if {
	facts := tls_facts(["spiffe://prod.example/admitd/n5"], ["n5"])
	outcome(facts) == fixtures.denied({"IDENTITY_MISMATCH"})
	some msg in deny_messages(facts, "IDENTITY_MISMATCH")
	contains(msg, `candidate n4: the API at http://127.0.0.1:7430 did not prove that identity (certificate verified: true, SAN URIs: ["spiffe://prod.example/admitd/n5"], DNS SANs: ["n5"], error: none reported)`)
	contains(msg, "needs SAN URI spiffe://<trust domain>/admitd/n4 or DNS SAN n4")
}

test_tls_lookalike_names_denied if {
	every uri in [
		"spiffe:///admitd/n4",
		"spiffe://d/admitd/n4/x",
		"spiffe://d/x/admitd/n4",
		"spiffe://d/other/n4",
		"spiffe://d/admitd/n",
		"spiffe://d/admitd/",
		"https://d/admitd/n4",
		"spiffe://d/admitd/N4",
		4,
	] {
		outcome(tls_facts([uri], [])) == fixtures.denied({"IDENTITY_MISMATCH"})
	}
	every name in ["N4", "n4.example", "", 4] {
		outcome(tls_facts([], [name])) == fixtures.denied({"IDENTITY_MISMATCH"})
	}
}

test_tls_unverified_certificate_denied if {
	facts := json.patch(tls_facts(["spiffe://d/admitd/n4"], ["n4"]), [
		{"op": "replace", "path": "/reachability/api/tls/verified", "value": false},
		{"op": "replace", "path": "/reachability/api/tls/error", "value": "x509: unknown authority"},
	])
	outcome(facts) == fixtures.denied({"IDENTITY_MISMATCH"})
	some msg in deny_messages(facts, "IDENTITY_MISMATCH")
	contains(msg, "certificate verified: false")
	contains(msg, "error: x509: unknown authority")
}

# An empty candidate id never matches an empty SAN. (The init_state stage
# reports the empty node_id: init_state_test.rego, test_empty_node_id_denied.)
test_tls_empty_id_denied if {
	facts := json.patch(tls_facts(["spiffe://d/admitd/"], [""]), [{"op": "replace", "path": "/candidate/id", "value": ""}])
	outcome(facts) == fixtures.denied({"CANDIDATE_MALFORMED", "IDENTITY_MISMATCH"})
}

# Absence of tls is not "TLS off".
test_tls_missing_denied if {
	facts := fixtures.without("/reachability/api/tls")
	outcome(facts) == fixtures.denied({"IDENTITY_UNPROVEN"})
	some msg in deny_messages(facts, "IDENTITY_UNPROVEN")
	contains(msg, "candidate n4: the facts do not prove the API's TLS identity: reachability.api.tls must be an object")
}

test_tls_malformed_denied if {
	every facts in [
		fixtures.patched("/reachability/api/tls", "off"),
		fixtures.patched("/reachability/api/tls", null),
		fixtures.patched("/reachability/api/tls/enabled", "false"),
		fixtures.without("/reachability/api/tls/enabled"),
		json.patch(tls_facts(["spiffe://d/admitd/n4"], []), [{"op": "remove", "path": "/reachability/api/tls/dns_names"}]),
		json.patch(tls_facts(["spiffe://d/admitd/n4"], []), [{"op": "replace", "path": "/reachability/api/tls/verified", "value": 1}]),
		fixtures.patched("/reachability/api/tls/uris", "spiffe://d/admitd/n4"),
		fixtures.patched("/reachability/api/tls/error", null),
	] {
		outcome(facts) == fixtures.denied({"IDENTITY_UNPROVEN"})
	}
	some msg in deny_messages(fixtures.patched("/reachability/api/tls/enabled", "false"), "IDENTITY_UNPROVEN")
	contains(msg, "reachability.api.tls.enabled must be a boolean, got string")
}

# An uncollected or missing section is reported as such; its tls (or the
# lack of one) proves nothing and is not reported on top.
test_tls_ignored_when_not_collected if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/reachability/collected", "value": false},
		{"op": "remove", "path": "/reachability/api/tls"},
	])
	outcome(facts) == fixtures.denied({"REACHABILITY_NOT_COLLECTED"})
	outcome(fixtures.without("/reachability")) == fixtures.denied({"REACHABILITY_MISSING"})
}

# An api probe that is not an object is REACHABILITY_MALFORMED once, not
# also a missing tls.
test_tls_not_reported_without_api_probe if {
	outcome(fixtures.without("/reachability/api")) == fixtures.denied({"REACHABILITY_MALFORMED"})
	outcome(fixtures.patched("/reachability/api", [])) == fixtures.denied({"REACHABILITY_MALFORMED"})
}

# A failed call carried no answer whose certificate could be judged (a
# refused connection, a failed handshake): API_UNREACHABLE alone, which
# stays retryable, never the permanent IDENTITY_MISMATCH.
test_tls_failed_call_is_unreachable_not_mismatch if {
	facts := json.patch(fixtures.good, [
		{"op": "replace", "path": "/reachability/api/ok", "value": false},
		{"op": "replace", "path": "/reachability/api/status", "value": 0},
		{"op": "replace", "path": "/reachability/api/error", "value": "tls: failed to verify certificate: x509: unknown authority"},
		{"op": "replace", "path": "/reachability/api/tls", "value": {
			"enabled": true, "verified": false, "uris": [], "dns_names": [],
			"error": "tls: failed to verify certificate: x509: unknown authority",
		}},
	])
	outcome(facts) == fixtures.denied({"API_UNREACHABLE"})
}

# An answer whose certificate names another node is a mismatch whatever
# else is wrong: it is reported beside the raft probe's failure.
test_tls_mismatch_reported_with_raft_unreachable if {
	facts := json.patch(tls_facts(["spiffe://d/admitd/n5"], []), [{"op": "replace", "path": "/reachability/raft/ok", "value": false}])
	outcome(facts) == fixtures.denied({"RAFT_UNREACHABLE", "IDENTITY_MISMATCH"})
}

# --- TLS identity at promotion -----------------------------------------------

# The promote pipeline runs this stage too, so a staged non-voter proves its
# identity again before it becomes a voter.
test_promote_tls_other_id_denied if {
	facts := fixtures.promote_patched("/reachability/api/tls", tls_on(["spiffe://prod.example/admitd/n5"], ["n5"]))
	outcome(facts) == fixtures.denied({"IDENTITY_MISMATCH"})
	some msg in deny_messages(facts, "IDENTITY_MISMATCH")
	contains(msg, "candidate n4: the API at http://127.0.0.1:7430 did not prove that identity")
}

test_promote_tls_names_candidate_allowed if {
	outcome(fixtures.promote) == fixtures.allowed
	outcome(fixtures.promote_patched("/reachability/api/tls", tls_on(["spiffe://prod.example/admitd/n4"], []))) == fixtures.allowed
}

test_promote_tls_missing_denied if {
	outcome(fixtures.promote_without("/reachability/api/tls")) == fixtures.denied({"IDENTITY_UNPROVEN"})
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
		fixtures.without("/reachability/api/tls"),
		fixtures.patched("/reachability/api/tls/enabled", "false"),
		tls_facts(["spiffe://d/admitd/n5"], ["n5"]),
		json.patch(tls_facts(["spiffe://d/admitd/n4"], []), [{"op": "replace", "path": "/reachability/api/tls/verified", "value": false}]),
		fixtures.promote_patched("/reachability/api/tls", tls_on(["spiffe://d/admitd/n5"], [])),
		fixtures.without("/reachability/raft_rpc"),
		fixtures.patched("/reachability/raft_rpc/ok", false),
		fixtures.patched("/reachability/raft_rpc/id", "n5"),
		fixtures.patched("/reachability/raft_rpc/id", ""),
		fixtures.patched("/reachability/api/skipped", true),
		fixtures.raft_only_patched("/reachability/api/skipped", false),
		fixtures.raft_only_patched("/reachability/api/tls/enabled", true),
		json.patch(fixtures.raft_only, [{"op": "remove", "path": "/reachability/api/tls"}]),
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
		"RAFT_UNREACHABLE", "API_BAD_STATUS", "IDENTITY_UNPROVEN",
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
