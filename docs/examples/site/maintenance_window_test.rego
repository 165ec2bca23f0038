package admitd.stages.maintenance_window_test

import data.admitd.fixtures
import data.admitd.stages.maintenance_window as mw

# fixtures.good is collected at 2026-11-25T19:00:00.123456789Z.
window(start, end) := fixtures.patched("/site", {"maintenance_window": {"start": start, "end": end}})

test_inside_allowed if {
	mw.allow with input as window("2026-11-25T18:00:00Z", "2026-11-25T20:00:00Z")
	mw.allow with input as window("2026-11-25T20:00:00+01:00", "2026-11-25T21:00:00+01:00")
}

test_outside_denied if {
	s := fixtures.summary(mw) with input as window("2026-11-25T20:00:00Z", "2026-11-25T22:00:00Z")
	s == {"allow": false, "deny": {"OUTSIDE_MAINTENANCE_WINDOW"}, "warn": set()}
}

test_end_is_exclusive if {
	not mw.allow with input as window("2026-11-25T18:00:00Z", "2026-11-25T19:00:00.123456789Z")
}

# The pitfall: no site facts at all must deny, not allow.
test_missing_window_denied if {
	s := fixtures.summary(mw) with input as fixtures.good
	s == {"allow": false, "deny": {"MAINTENANCE_WINDOW_MISSING"}, "warn": set()}
}

test_malformed_window_denied if {
	s := fixtures.summary(mw) with input as window("tomorrow", "2026-11-25T20:00:00Z")
	s.deny == {"MAINTENANCE_WINDOW_MISSING"}
	t := fixtures.summary(mw) with input as fixtures.patched("/site", {"maintenance_window": "always"})
	t.deny == {"MAINTENANCE_WINDOW_MISSING"}
}
