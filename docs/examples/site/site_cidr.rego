# METADATA
# title: Site network
# description: |
#   A candidate's raft address must be an IP literal inside one of the
#   site's networks. A host name cannot be proven to be inside a network
#   (policies cannot resolve names), so it is refused too.
package admitd.stages.site_cidr

# METADATA
# title: Allowed networks
# description: The networks voters may live in.
allowed_cidrs := ["127.0.0.0/8", "10.20.0.0/16"]

# METADATA
# title: Allow
default allow := false

allow if {
	count(deny) == 0
	inside
}

# The host part of host:port, without the brackets of an IPv6 literal.
host := h if {
	is_string(input.candidate.raft_addr)
	m := regex.find_all_string_submatch_n(`^\[?([^\[\]]+?)\]?:[0-9]+$`, input.candidate.raft_addr, 1)
	h := m[0][1]
}

# METADATA
# title: IP literal
# description: The host is an IPv4 or IPv6 address, not a name.
ip_literal if net.cidr_is_valid(sprintf("%s/32", [host]))

# METADATA
# title: Inside an allowed network
inside if {
	ip_literal
	some cidr in allowed_cidrs
	net.cidr_contains(cidr, host)
}

# METADATA
# title: Address not an IP
deny contains {"code": "CANDIDATE_ADDR_NOT_IP", "message": msg} if {
	not ip_literal
	msg := sprintf(
		"candidate raft address %v has no IP address as its host; this site admits voters by network, so give the candidate an IP address",
		[text(["candidate", "raft_addr"])],
	)
}

# METADATA
# title: Outside the networks
deny contains {"code": "CANDIDATE_OUTSIDE_NETWORK", "message": msg} if {
	ip_literal
	not inside
	msg := sprintf(
		"candidate %v at %v is outside the site's networks (%s)",
		[text(["candidate", "id"]), host, concat(", ", allowed_cidrs)],
	)
}

# text is the input value at path for a message, never undefined: a
# message that is undefined when a fact is missing silently drops its deny.
text(path) := sprintf("%v", [v]) if {
	v := object.get(input, path, null)
	v != null
} else := "<missing>"
