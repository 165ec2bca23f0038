# METADATA
# title: Maintenance
# description: |
#   No removal or demotion while the operator's site facts say maintenance
#   is under way: {"maintenance": {"active": true}} in the file given to
#   admitd serve --site-facts. The flag must be stated, true or false:
#   without it a removal is refused too, since no one has said that
#   maintenance is over. List the stage in remove_stages, after topology;
#   in stages it would hold admissions as well.
package admitd.stages.maintenance

# METADATA
# title: Allow
default allow := false

allow if {
	count(deny) == 0
	quiet
}

# METADATA
# title: Flag stated
# description: site.maintenance.active is true or false.
flag_stated if is_boolean(input.site.maintenance.active)

# METADATA
# title: Quiet
# description: The site facts say that no maintenance is under way.
quiet if input.site.maintenance.active == false

# METADATA
# title: Maintenance under way
deny contains {"code": "MAINTENANCE_WINDOW", "message": msg} if {
	input.site.maintenance.active == true
	msg := sprintf(
		"maintenance is under way (site.maintenance.active is true): no %s of %s until it ends; retry once the site facts say it is over",
		[what, text(["candidate", "id"])],
	)
}

# METADATA
# title: Maintenance unknown
deny contains {"code": "MAINTENANCE_UNKNOWN", "message": msg} if {
	not flag_stated
	msg := "the site facts do not say whether maintenance is under way (site.maintenance.active, true or false); add it to the --site-facts file and reload"
}

# The change in words, for the message.
what := w if {
	w := {"remove": "removal", "demote": "demotion"}[input.change]
} else := "membership change"

# text is the input value at path for a message, never undefined.
text(path) := sprintf("%v", [v]) if {
	v := object.get(input, path, null)
	v != null
} else := "<missing>"
