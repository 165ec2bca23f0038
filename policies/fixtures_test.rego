# METADATA
# title: Test fixtures
# description: |
#   Shared facts for the stage tests. `good` passes every stage; tests derive
#   variants from it with json.patch or object.union, so each test shows only
#   what it changes. This file ends in _test.rego so the daemon never loads it.
package admitd.fixtures

# A fresh candidate n4, reachable, joining a healthy two-voter cluster led
# by n1 as a voter at once (change "add_voter"). Its raft server and its API
# both answer, as n4, and both say it is fresh.
good := {
	"schema": "admitd.facts/v1",
	"phase": "admit",
	"change": "add_voter",
	"collected_at": "2026-11-25T19:00:00.123456789Z",
	"candidate": {"id": "n4", "raft_addr": "127.0.0.1:7431", "api_url": "http://127.0.0.1:7430"},
	"reachability": {
		"collected": true, "error": "", "duration_ms": 0.41,
		"raft": {"ok": true, "attempts": 3, "successes": 3, "rtt_ms": 0.08, "error": ""},
		"raft_rpc": {"ok": true, "id": "n4", "rtt_ms": 0.12, "error": ""},
		"api": {
			"skipped": false, "ok": true, "status": 200, "rtt_ms": 0.30, "error": "",
			"tls": {"enabled": false, "verified": false, "uris": [], "dns_names": [], "error": ""},
		},
	},
	"init_state": {
		"collected": true, "error": "", "duration_ms": 0.35,
		"sources": ["raft", "api"],
		"raft": {"id": "n4", "term": 0, "granted": true, "last_index": 0, "last_index_known": false},
		"node_id": "n4", "initialized": false, "cluster_id": "",
		"last_index": 0, "last_term": 0, "version": "0.1.0",
	},
	"topology": {
		"collected": true, "error": "", "duration_ms": 0.05,
		"cluster_id": "4f0c6b9e", "config_index": 12,
		"leader": {"id": "n1", "address": "127.0.0.1:7401", "canonical_addresses": ["127.0.0.1:7401"], "address_error": ""},
		"servers": [
			{"id": "n1", "address": "127.0.0.1:7401", "canonical_addresses": ["127.0.0.1:7401"], "address_error": "", "suffrage": "voter", "healthy": true},
			{"id": "n2", "address": "127.0.0.1:7411", "canonical_addresses": ["127.0.0.1:7411"], "address_error": "", "suffrage": "voter", "healthy": true},
		],
		"tombstones": ["n0"],
		"staged": [],
		"max_staged": 1,
		"candidate_address": {"address": "127.0.0.1:7431", "canonical_addresses": ["127.0.0.1:7431"], "address_error": ""},
	},
}

# The same n4, admitted in stage as a non-voter and caught up: it passes
# every stage of the promote pipeline. Promote facts have no init_state.
promote := json.patch(good, [
	{"op": "replace", "path": "/phase", "value": "promote"},
	{"op": "replace", "path": "/change", "value": "promote"},
	{"op": "remove", "path": "/init_state"},
	{"op": "add", "path": "/catch_up", "value": {
		"collected": true, "error": "", "duration_ms": 0.3,
		"leader_last_index": 5012, "leader_term": 3,
		"last_index": 5010, "last_term": 3, "lag": 2,
		"last_contact_ms": 35.2, "healthy_for_ms": 12000.5, "staged_for_ms": 15000.1,
		"sources": ["api"],
	}},
	{"op": "add", "path": "/topology/servers/-", "value": {
		"id": "n4", "address": "127.0.0.1:7431", "canonical_addresses": ["127.0.0.1:7431"], "address_error": "",
		"suffrage": "nonvoter", "healthy": true,
	}},
	{"op": "replace", "path": "/topology/staged", "value": ["n4"]},
])

# The removal of n3, a healthy voter of a healthy three-voter cluster led
# by n1 (change "remove"); it passes every stage of remove_stages. Removal
# facts carry the topology alone: nothing from the member itself, which is
# often dead, so no reachability, init_state or catch_up, and n3 has no API;
# nor topology.candidate_address, as a removal compares no addresses.
remove := json.patch(good, [
	{"op": "replace", "path": "/phase", "value": "remove"},
	{"op": "replace", "path": "/change", "value": "remove"},
	{"op": "replace", "path": "/candidate", "value": {"id": "n3", "raft_addr": "n3.cluster.test:7401", "api_url": ""}},
	{"op": "remove", "path": "/reachability"},
	{"op": "remove", "path": "/init_state"},
	{"op": "remove", "path": "/topology/candidate_address"},
	{"op": "add", "path": "/topology/servers/-", "value": voter("n3", true)},
])

# remove_patched and remove_without are patched and without for remove.
remove_patched(path, value) := json.patch(remove, [{"op": "add", "path": path, "value": value}])

remove_without(path) := json.patch(remove, [{"op": "remove", "path": path}])

# The same n3 demoted to a non-voter (change "demote") instead.
demote := remove_patched("/change", "demote")

# The same n4 admitted in stage, as a non-voter (change "add_nonvoter").
staged := json.patch(good, [{"op": "replace", "path": "/change", "value": "add_nonvoter"}])

# The same n4 running nothing but hashicorp/raft: no api_url, so the
# collector skips the API, and its init state comes from its raft server
# alone, the top-level fields derived from that answer.
raft_only := json.patch(good, [
	{"op": "replace", "path": "/candidate/api_url", "value": ""},
	{"op": "replace", "path": "/reachability/api", "value": {
		"skipped": true, "ok": false, "status": 0, "rtt_ms": 0, "error": "",
		"tls": {"enabled": false, "verified": false, "uris": [], "dns_names": [], "error": ""},
	}},
	{"op": "replace", "path": "/init_state/sources", "value": ["raft"]},
	{"op": "replace", "path": "/init_state/version", "value": ""},
])

# raft_only_patched is raft_only with one field replaced or added.
raft_only_patched(path, value) := json.patch(raft_only, [{"op": "add", "path": path, "value": value}])

# The raft part of init_state for a server with state: term 7, the
# pre-vote refused, a log up to index 42.
raft_with_state := {"id": "n4", "term": 7, "granted": false, "last_index": 42, "last_index_known": true}

# Catch-up thresholds for tests, Consul autopilot's defaults. Tests pass
# them with `with data.admitd.settings.catch_up as fixtures.catch_up_settings`,
# so a site that tunes its settings keeps passing them.
catch_up_settings := {"max_lag_entries": 250, "max_last_contact_ms": 200, "min_healthy_ms": 10000}

# patched is good with one field replaced or added; path is a JSON pointer.
patched(path, value) := json.patch(good, [{"op": "add", "path": path, "value": value}])

# without is good with one field removed; path is a JSON pointer.
without(path) := json.patch(good, [{"op": "remove", "path": path}])

# promote_patched and promote_without are patched and without for promote.
promote_patched(path, value) := json.patch(promote, [{"op": "add", "path": path, "value": value}])

promote_without(path) := json.patch(promote, [{"op": "remove", "path": path}])

# A server entry; the address is derived from the id so it never collides with the candidate's.
# Its canonical address stands for the endpoint that name resolves to, one per id.
voter(id, healthy) := {
	"id": id, "address": sprintf("%s.cluster.test:7401", [id]),
	"canonical_addresses": [sprintf("%s.cluster.test:7401", [id])], "address_error": "",
	"suffrage": "voter", "healthy": healthy,
}

nonvoter(id, healthy) := object.union(voter(id, healthy), {"suffrage": "nonvoter"})

# summary condenses a stage's evaluated package (data.admitd.stages.<name>
# with input as the facts): whether it allows, and its deny and warn codes.
summary(pkg) := {"allow": pkg.allow, "deny": codes(pkg, "deny"), "warn": codes(pkg, "warn")}

codes(pkg, kind) := {entry.code | some entry in object.get(pkg, kind, set())}

# messages are the messages of a package's entries with this code (kind is "deny" or "warn").
messages(pkg, kind, code) := {entry.message |
	some entry in object.get(pkg, kind, set())
	entry.code == code
}

# Shorthands for the expected outcome.
allowed := {"allow": true, "deny": set(), "warn": set()}

denied(deny_codes) := {"allow": false, "deny": deny_codes, "warn": set()}
