package admitd.stages.site_cidr_test

import data.admitd.fixtures
import data.admitd.stages.site_cidr

with_addr(addr) := fixtures.patched("/candidate/raft_addr", addr)

test_inside_allowed if {
	site_cidr.allow with input as with_addr("10.20.3.4:7401")
	site_cidr.allow with input as fixtures.good
}

test_outside_denied if {
	s := fixtures.summary(site_cidr) with input as with_addr("192.0.2.10:7401")
	s == {"allow": false, "deny": {"CANDIDATE_OUTSIDE_NETWORK"}, "warn": set()}
}

test_ipv6_outside_denied if {
	s := fixtures.summary(site_cidr) with input as with_addr("[2001:db8::1]:7401")
	s.deny == {"CANDIDATE_OUTSIDE_NETWORK"}
}

test_host_name_denied if {
	s := fixtures.summary(site_cidr) with input as with_addr("n4.cluster.test:7401")
	s.deny == {"CANDIDATE_ADDR_NOT_IP"}
}

# A missing address is refused, never taken as "not outside".
test_missing_addr_denied if {
	s := fixtures.summary(site_cidr) with input as fixtures.without("/candidate/raft_addr")
	s == {"allow": false, "deny": {"CANDIDATE_ADDR_NOT_IP"}, "warn": set()}
}
