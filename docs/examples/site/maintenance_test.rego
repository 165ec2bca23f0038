package admitd.stages.maintenance_test

import data.admitd.fixtures
import data.admitd.stages.maintenance

# fixtures.remove removes n3, a healthy voter; fixtures.demote demotes it.
with_site(facts, site) := json.patch(facts, [{"op": "add", "path": "/site", "value": site}])

test_quiet_allowed if {
	maintenance.allow with input as with_site(fixtures.remove, {"maintenance": {"active": false}})
	maintenance.allow with input as with_site(fixtures.demote, {"maintenance": {"active": false}})
}

test_under_way_denied if {
	facts := with_site(fixtures.remove, {"maintenance": {"active": true}})
	s := fixtures.summary(maintenance) with input as facts
	s == {"allow": false, "deny": {"MAINTENANCE_WINDOW"}, "warn": set()}
	msgs := fixtures.messages(maintenance, "deny", "MAINTENANCE_WINDOW") with input as facts
	msgs == {"maintenance is under way (site.maintenance.active is true): no removal of n3 until it ends; retry once the site facts say it is over"}
	some msg in fixtures.messages(maintenance, "deny", "MAINTENANCE_WINDOW") with input as with_site(fixtures.demote, {"maintenance": {"active": true}})
	contains(msg, "no demotion of n3")
}

# The pitfall: no site facts must deny, not allow; so must a flag that is
# not a boolean.
test_unknown_denied if {
	every facts in [
		fixtures.remove,
		with_site(fixtures.remove, {}),
		with_site(fixtures.remove, {"maintenance": {"active": "yes"}}),
	] {
		s := fixtures.summary(maintenance) with input as facts
		s == {"allow": false, "deny": {"MAINTENANCE_UNKNOWN"}, "warn": set()}
	}
	not maintenance.allow with input as {}
}

# Messages stay defined on garbage.
test_message_survives_garbage if {
	some msg in fixtures.messages(maintenance, "deny", "MAINTENANCE_WINDOW") with input as {"site": {"maintenance": {"active": true}}}
	contains(msg, "no membership change of <missing>")
}
