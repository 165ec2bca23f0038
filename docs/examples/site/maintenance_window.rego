# METADATA
# title: Maintenance window
# description: |
#   Voters are added only inside the maintenance window the operator
#   supplies in the site facts (admitd serve --site-facts FILE):
#   {"maintenance_window": {"start": "<RFC 3339>", "end": "<RFC 3339>"}}.
#   The time compared is the facts' collected_at, so a decision can be
#   replayed. Without a well-formed window there is no admission: the
#   window must be proven, never assumed from its absence.
package admitd.stages.maintenance_window

# METADATA
# title: Allow
default allow := false

allow if {
	count(deny) == 0
	inside
}

rfc3339 := `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`

timestamp(s) if {
	is_string(s)
	regex.match(rfc3339, s)
}

# METADATA
# title: Window given
# description: The site facts carry a start and an end, and the facts a collection time, all RFC 3339.
window_given if {
	timestamp(input.site.maintenance_window.start)
	timestamp(input.site.maintenance_window.end)
	timestamp(input.collected_at)
}

start_ns := time.parse_rfc3339_ns(input.site.maintenance_window.start) if window_given

end_ns := time.parse_rfc3339_ns(input.site.maintenance_window.end) if window_given

now_ns := time.parse_rfc3339_ns(input.collected_at) if window_given

# METADATA
# title: Inside the window
inside if {
	start_ns <= now_ns
	now_ns < end_ns
}

# METADATA
# title: Window missing
deny contains {"code": "MAINTENANCE_WINDOW_MISSING", "message": msg} if {
	not window_given
	msg := "no maintenance window in the site facts (site.maintenance_window.start and .end, RFC 3339); add one to the --site-facts file and reload"
}

# METADATA
# title: Outside the window
deny contains {"code": "OUTSIDE_MAINTENANCE_WINDOW", "message": msg} if {
	window_given
	not inside
	msg := sprintf(
		"facts collected at %s, outside the maintenance window %s to %s; retry inside the window",
		[input.collected_at, input.site.maintenance_window.start, input.site.maintenance_window.end],
	)
}
