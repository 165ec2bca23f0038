package main

// described holds descriptions, by JSON path, of the fields whose Go
// declaration has no comment. A field's own Go comment wins.
var described = map[string]string{
	"schema":       "Always `admitd.facts/v1`; any other value is refused before evaluation.",
	"phase":        "`admit` (join as a member) or `promote` (a staged non-voter becomes a voter); it picks the pipeline, and a missing phase is admit.",
	"collected_at": "When collection started, with nanoseconds.",

	"candidate.id":        "The candidate's raft server id.",
	"candidate.raft_addr": "The candidate's raft address, host:port.",
	"candidate.api_url":   "The candidate's admitd API URL.",

	"reachability":                "Can the candidate be reached on its raft address and its API?",
	"reachability.collected":      "True only when the collector ran to completion; when false, every other field of the section is meaningless.",
	"reachability.error":          "Why the collector failed or timed out; empty when collected.",
	"reachability.duration_ms":    "How long the collector ran, in milliseconds.",
	"reachability.raft.ok":        "At least one TCP handshake to the raft address succeeded.",
	"reachability.raft.attempts":  "TCP handshakes tried.",
	"reachability.raft.successes": "TCP handshakes that succeeded.",
	"reachability.raft.rtt_ms":    "Median time of the successful handshakes, in milliseconds.",
	"reachability.raft.error":     "The last handshake error, if any.",
	"reachability.api.ok":         "`GET /v1/state` on the candidate answered 200 with a valid body.",
	"reachability.api.status":     "The HTTP status of that call (0 when there was no answer).",
	"reachability.api.rtt_ms":     "Its round-trip time, in milliseconds.",
	"reachability.api.error":      "Why the call failed, if it did.",

	"init_state":             "What the candidate reports about its own raft state (its `/v1/state`).",
	"init_state.collected":   "True only when the collector ran to completion; when false, every other field of the section is meaningless.",
	"init_state.error":       "Why the collector failed or timed out; empty when collected.",
	"init_state.duration_ms": "How long the collector ran, in milliseconds.",
	"init_state.node_id":     "The id the candidate reports for itself.",
	"init_state.initialized": "The candidate already belongs to a cluster. Prove `== false`; never write `not input.init_state.initialized`.",
	"init_state.cluster_id":  "The cluster the candidate belongs to; empty when fresh.",
	"init_state.last_index":  "The candidate's last raft log index; 0 when fresh.",
	"init_state.last_term":   "The candidate's last raft term; 0 when fresh.",
	"init_state.version":     "The candidate's admitd version.",

	"topology":                     "The cluster as the leader sees it.",
	"topology.collected":           "True only when the collector ran to completion; when false, every other field of the section is meaningless.",
	"topology.error":               "Why the collector failed or timed out; empty when collected.",
	"topology.duration_ms":         "How long the collector ran, in milliseconds.",
	"topology.cluster_id":          "The cluster's id.",
	"topology.config_index":        "The raft configuration index the facts were read at; an allow adds the voter with this `prevIndex`.",
	"topology.leader.id":           "The leader's id; empty when there is no leader.",
	"topology.leader.address":      "The leader's raft address.",
	"topology.servers":             "Every member of the raft configuration.",
	"topology.servers[_].id":       "The member's id.",
	"topology.servers[_].address":  "The member's raft address.",
	"topology.servers[_].suffrage": "`voter` or `nonvoter`.",
	"topology.servers[_].healthy":  "The leader's view: the member answers its `/v1/state` as itself, in this cluster and in the leader's term.",

	"catch_up":                   "Promote phase only: how far the staged non-voter has caught up with the leader.",
	"catch_up.collected":         "True only when the collector ran to completion; when false, every other field of the section is meaningless.",
	"catch_up.error":             "Why the collector failed or timed out; empty when collected.",
	"catch_up.duration_ms":       "How long the collector ran, in milliseconds.",
	"catch_up.leader_last_index": "The leader's last log index.",
	"catch_up.leader_term":       "The leader's current term.",
	"catch_up.last_index":        "The candidate's last log index, as it reports it.",
	"catch_up.last_term":         "The term of the candidate's last log entry.",

	"topology.max_staged": "How many non-voters may be in stage at once (`admitd serve --max-staged`).",

	"reachability.api.tls.enabled":   "This node runs with TLS, so the candidate had to serve HTTPS.",
	"reachability.api.tls.verified":  "The candidate's certificate chained to a trusted CA.",
	"reachability.api.tls.uris":      "The certificate's URI SANs.",
	"reachability.api.tls.dns_names": "The certificate's DNS SANs.",
	"reachability.api.tls.error":     "Why the TLS identity could not be read, if it could not.",
}
