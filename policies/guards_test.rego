# Tests for the fast-path guards. Each stage checks the types of its facts
# twice: in one cheap rule (well_typed, servers_well_formed, tls_well_typed)
# that lets the happy path skip the detailed malformed checks, and in those
# detailed checks, driven by the stage's schema. These tests keep the two in
# step: giving any one schema field a wrong type must both break the guard
# and produce a malformed entry.
package admitd.guards_test

import data.admitd.fixtures

reachability(facts) := pkg if {
	pkg := data.admitd.stages.reachability with input as facts
}

init_state(facts) := pkg if {
	pkg := data.admitd.stages.init_state with input as facts
}

topology(facts) := pkg if {
	pkg := data.admitd.stages.topology with input as facts
}

# A value of a type no schema field has.
wrong := {"wrong": "type"}

catch_up(facts) := pkg if {
	pkg := data.admitd.stages.catch_up with input as facts
}

test_good_facts_pass_every_guard if {
	reachability(fixtures.good).well_typed
	init_state(fixtures.good).well_typed
	init_state(fixtures.raft_only).well_typed
	reachability(fixtures.raft_only).well_typed
	reachability(fixtures.good).tls_well_typed
	reachability(fixtures.promote).tls_well_typed
	topology(fixtures.good).well_typed
	topology(fixtures.good).servers_well_formed
	catch_up(fixtures.promote).well_typed
	topology(fixtures.promote).well_typed
	topology(fixtures.remove).well_typed
}

test_reachability_guard_covers_schema if {
	schema := reachability(fixtures.good).schema
	every probe, fields in schema {
		every field, _ in fields {
			pkg := reachability(fixtures.patched(sprintf("/reachability/%s/%s", [probe, field]), wrong))
			not pkg.well_typed
			count(pkg.malformed) == 1
		}
	}
}

test_init_state_guard_covers_schema if {
	every field, _ in init_state(fixtures.good).schema {
		pkg := init_state(fixtures.patched(sprintf("/init_state/%s", [field]), wrong))
		not pkg.well_typed
		count(pkg.malformed) == 1
	}
}

test_init_state_raft_guard_covers_schema if {
	every field, _ in init_state(fixtures.good).raft_schema {
		pkg := init_state(fixtures.patched(sprintf("/init_state/raft/%s", [field]), wrong))
		not pkg.well_typed
		count(pkg.malformed) == 1
	}
}

test_tls_guard_covers_schema if {
	every field, _ in reachability(fixtures.good).tls_schema {
		pkg := reachability(fixtures.patched(sprintf("/reachability/api/tls/%s", [field]), wrong))
		not pkg.tls_well_typed
		count(pkg.tls_malformed) == 1
	}
}

test_topology_guard_covers_server_schema if {
	every field, _ in topology(fixtures.good).server_schema {
		pkg := topology(fixtures.patched(sprintf("/topology/servers/1/%s", [field]), wrong))
		not pkg.servers_well_formed
		not pkg.well_typed
		count(pkg.malformed) == 1
	}
	pkg := topology(fixtures.patched("/topology/servers/1/suffrage", "observer"))
	not pkg.servers_well_formed
	count(pkg.malformed) == 1
}

test_topology_guard_covers_other_fields if {
	every path in [
		"/topology/config_index", "/topology/leader/id", "/topology/leader/address",
		"/topology/servers", "/topology/tombstones", "/topology/staged", "/topology/max_staged",
		"/topology/leader/canonical_addresses", "/topology/leader/address_error",
		"/topology/candidate_address", "/topology/candidate_address/address",
		"/topology/candidate_address/canonical_addresses", "/topology/candidate_address/address_error",
	] {
		pkg := topology(fixtures.patched(path, wrong))
		not pkg.well_typed
		count(pkg.malformed) >= 1
	}
}

test_catch_up_guard_covers_schema if {
	every field, _ in catch_up(fixtures.promote).schema {
		pkg := catch_up(fixtures.promote_patched(sprintf("/catch_up/%s", [field]), wrong))
		not pkg.well_typed
		count(pkg.malformed) == 1
	}
}
