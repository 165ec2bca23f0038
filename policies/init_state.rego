# METADATA
# title: Init state
# description: |
#   Stage 2. The candidate must be a fresh node: not initialized, no cluster id,
#   no raft log (last_index and last_term 0), and it must call itself by the
#   id it asks to join as. Adding a node that already has raft state would
#   merge two histories; hashicorp/raft does not protect against that.
#
#   Two sources answer (init_state.sources). The raft server at raft_addr
#   always does ("raft"): a term-0 pre-vote, which a fresh, never
#   bootstrapped server answers at term 0 and grants, and one with state
#   answers at its term and refuses; only then a term-0 AppendEntries gives
#   its last log index (init_state.raft). When the candidate has an api_url,
#   its /v1/state answers too ("api"), and the top-level fields (node_id,
#   initialized, cluster_id, last_index, last_term) are the API's; without
#   it they are derived from the raft answer.
#
#   Each sign of state denies on its own, whatever the others say: the
#   initialized flag and each raft signal (term above 0, the pre-vote
#   refused, a last index above 0) are ALREADY_INITIALIZED; a cluster id or
#   a log reported by the API is EXISTING_RAFT_STATE. An API that says fresh
#   while the raft server shows state, or that reports another node id than
#   the raft server, is INIT_STATE_CONTRADICTION: api_url and raft_addr
#   point at different nodes, or the node misreports itself.
#
#   Every fact is proven, never inferred from absence: a missing "initialized"
#   field is INIT_STATE_MALFORMED, not "not initialized", and so are sources
#   without "raft" or a malformed raft answer.
#
#   The TLS identity behind the /v1/state answer (IDENTITY_MISMATCH,
#   IDENTITY_UNPROVEN) is checked by the reachability stage, which runs
#   before this one and in the promote pipeline too.
#
#   Facts: input.candidate ({id, raft_addr, api_url}) and input.init_state
#   ({collected, error, sources, raft: {id, term, granted, last_index,
#   last_index_known}, node_id, initialized, cluster_id, last_index,
#   last_term}).
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.init_state

# METADATA
# title: Allow
# description: Passes only on positive proof, from every source, of a fresh
#   node with the right id.
default allow := false

allow if {
	count(deny) == 0
	collected
	well_typed
	sources_valid
	input.init_state.initialized == false
	input.init_state.cluster_id == ""
	input.init_state.last_index == 0
	input.init_state.last_term == 0
	node_id_matches
	raft_fresh
	sources_agree
}

# --- Section -----------------------------------------------------------------

# METADATA
# title: Section present
# description: input.init_state is an object.
section_present if is_object(input.init_state)

# METADATA
# title: Collected
# description: The collector ran to completion.
collected if input.init_state.collected == true

# METADATA
# title: Init state missing
# description: The facts document has no init_state section.
deny contains {"code": "INIT_STATE_MISSING", "message": msg} if {
	not section_present
	msg := sprintf(
		"candidate %s: the facts have no init_state section (an object is required); the collector did not run",
		[candidate_id],
	)
}

# METADATA
# title: Init state not collected
# description: The collector failed or timed out; its other fields mean nothing.
deny contains {"code": "INIT_STATE_NOT_COLLECTED", "message": msg} if {
	section_present
	not collected
	msg := sprintf(
		"candidate %s: init state was not collected (%s); check that %s, then retry",
		[candidate_id, collector_error, sources_hint],
	)
}

# METADATA
# title: Init state malformed
# description: Every field the stage reads must be present with the right
#   type, and sources must list the raft server and, for a candidate with an
#   api_url, its API.
deny contains {"code": "INIT_STATE_MALFORMED", "message": msg} if {
	collected
	count(malformed) > 0
	msg := sprintf(
		"candidate %s: malformed init state: %s; the collector must report every field, and the candidate every field of GET /v1/state",
		[candidate_id, concat(", ", sort(malformed))],
	)
}

# Expected type of every field the stage reads.
schema := {
	"sources": "array",
	"node_id": "string",
	"cluster_id": "string",
	"initialized": "boolean",
	"last_index": "number",
	"last_term": "number",
}

# Expected type of every field of the raft server's answer.
raft_schema := {
	"id": "string",
	"term": "number",
	"granted": "boolean",
	"last_index": "number",
	"last_index_known": "boolean",
}

# METADATA
# title: Well typed
# description: Every field of schema and raft_schema has its type. It
#   implies that the type part of malformed is empty, so the detailed type
#   checks below only run on facts that are not; keep it in step with both.
well_typed if {
	is_array(input.init_state.sources)
	is_string(input.init_state.node_id)
	is_string(input.init_state.cluster_id)
	is_boolean(input.init_state.initialized)
	is_number(input.init_state.last_index)
	is_number(input.init_state.last_term)
	is_string(input.init_state.raft.id)
	is_number(input.init_state.raft.term)
	is_boolean(input.init_state.raft.granted)
	is_number(input.init_state.raft.last_index)
	is_boolean(input.init_state.raft.last_index_known)
}

malformed contains sprintf("%s must be %s, got %s", [field, a_kind(want), got]) if {
	not well_typed
	section_present
	some field, want in schema
	got := kind(input.init_state, field)
	got != want
}

malformed contains sprintf("raft must be an object, got %s", [kind(input.init_state, "raft")]) if {
	not well_typed
	section_present
	kind(input.init_state, "raft") != "object"
}

malformed contains sprintf("raft.%s must be %s, got %s", [field, a_kind(want), got]) if {
	not well_typed
	is_object(input.init_state.raft)
	some field, want in raft_schema
	got := kind(input.init_state.raft, field)
	got != want
}

# --- Sources -----------------------------------------------------------------

# The sources a collector may list.
source_names := {"raft", "api"}

# METADATA
# title: Raft listed
# description: sources lists the raft server, which always answers.
raft_listed if "raft" in input.init_state.sources

# METADATA
# title: API listed
# description: sources lists the candidate's API.
api_listed if "api" in input.init_state.sources

# METADATA
# title: Sources valid
# description: sources is an array of known sources that lists the raft
#   server, and the API exactly when the candidate has an api_url.
sources_valid if {
	is_array(input.init_state.sources)
	count(source_problems) == 0
}

source_problems contains sprintf(`sources must list "raft", got %s`, [json.marshal(input.init_state.sources)]) if {
	is_array(input.init_state.sources)
	not raft_listed
}

source_problems contains sprintf(`sources[%d] must be "raft" or "api", got %s`, [i, json.marshal(source)]) if {
	is_array(input.init_state.sources)
	some i, source in input.init_state.sources
	not source in source_names
}

source_problems contains sprintf(`sources must list "api" for a candidate with api_url %s, got %s`, [api_url, json.marshal(input.init_state.sources)]) if {
	has_api
	is_array(input.init_state.sources)
	not api_listed
}

source_problems contains `sources lists "api", but the candidate has no api_url` if {
	no_api
	api_listed
}

# Without the API, node_id is the raft server's id.
source_problems contains sprintf("node_id %q must be raft.id %q when the API is not among sources", [input.init_state.node_id, input.init_state.raft.id]) if {
	is_array(input.init_state.sources)
	not api_listed
	is_string(input.init_state.node_id)
	is_string(input.init_state.raft.id)
	input.init_state.node_id != input.init_state.raft.id
}

malformed contains problem if {
	section_present
	some problem in source_problems
}

# METADATA
# title: Has API
# description: The candidate names an API (a non-empty api_url).
has_api if {
	is_string(input.candidate.api_url)
	input.candidate.api_url != ""
}

# METADATA
# title: No API
# description: The candidate's api_url is stated empty, so only its raft
#   server can answer.
no_api if input.candidate.api_url == ""

# --- State -------------------------------------------------------------------

# METADATA
# title: Already initialized
# description: The candidate says it is initialized.
deny contains {"code": "ALREADY_INITIALIZED", "message": msg} if {
	collected
	input.init_state.initialized == true
	msg := sprintf(
		"candidate %s is already initialized (cluster_id %s); only a fresh node can join: wipe its data directory or remove it from its old cluster first",
		[candidate_id, state_field("cluster_id")],
	)
}

# METADATA
# title: Existing raft state
# description: The candidate holds raft state (a cluster id or a log),
#   whatever its initialized flag says.
deny contains {"code": "EXISTING_RAFT_STATE", "message": msg} if {
	collected
	count(existing_state) > 0
	msg := sprintf(
		"candidate %s has existing raft state (%s) although initialized is %s; only a fresh node can join: wipe its data directory first",
		[candidate_id, concat(", ", sort(existing_state)), state_field("initialized")],
	)
}

existing_state contains sprintf("cluster_id %q", [id]) if {
	id := input.init_state.cluster_id
	is_string(id)
	id != ""
}

existing_state contains sprintf("%s %v", [field, n]) if {
	some field in ["last_index", "last_term"]
	n := input.init_state[field]
	is_number(n)
	n > 0
}

# --- Raft signals ------------------------------------------------------------

# METADATA
# title: Raft fresh
# description: The raft server answered at term 0, granted the term-0
#   pre-vote, and reported no log entry.
raft_fresh if {
	input.init_state.raft.term == 0
	input.init_state.raft.granted == true
	raft_log_empty
}

raft_log_empty if input.init_state.raft.last_index_known == false

raft_log_empty if {
	input.init_state.raft.last_index_known == true
	input.init_state.raft.last_index == 0
}

# METADATA
# title: Raft term above 0
# description: The raft server answered at a term above 0; a server that
#   was never bootstrapped nor joined is at term 0.
deny contains {"code": "ALREADY_INITIALIZED", "message": msg} if {
	collected
	is_number(input.init_state.raft.term)
	input.init_state.raft.term > 0
	msg := sprintf(
		"candidate %s: the raft server at %s answers at term %v, so it has taken part in an election; only a fresh node can join: wipe its data directory or remove it from its old cluster first",
		[candidate_id, raft_addr, input.init_state.raft.term],
	)
}

# METADATA
# title: Raft pre-vote refused
# description: The raft server refused the term-0 pre-vote, which a fresh,
#   never bootstrapped server grants.
deny contains {"code": "ALREADY_INITIALIZED", "message": msg} if {
	collected
	input.init_state.raft.granted == false
	msg := sprintf(
		"candidate %s: the raft server at %s refused a term-0 pre-vote, which only a server with raft state does; only a fresh node can join: wipe its data directory or remove it from its old cluster first",
		[candidate_id, raft_addr],
	)
}

# METADATA
# title: Raft log not empty
# description: The raft server reported a last log index above 0.
deny contains {"code": "ALREADY_INITIALIZED", "message": msg} if {
	collected
	input.init_state.raft.last_index_known == true
	is_number(input.init_state.raft.last_index)
	input.init_state.raft.last_index > 0
	msg := sprintf(
		"candidate %s: the raft server at %s has a raft log up to index %v; only a fresh node can join: wipe its data directory or remove it from its old cluster first",
		[candidate_id, raft_addr, input.init_state.raft.last_index],
	)
}

# What the raft server shows of its state, in words.
raft_state_signs contains sprintf("answers at term %v", [input.init_state.raft.term]) if {
	is_number(input.init_state.raft.term)
	input.init_state.raft.term > 0
}

raft_state_signs contains "refuses a term-0 pre-vote" if {
	input.init_state.raft.granted == false
}

raft_state_signs contains sprintf("has a log up to index %v", [input.init_state.raft.last_index]) if {
	input.init_state.raft.last_index_known == true
	is_number(input.init_state.raft.last_index)
	input.init_state.raft.last_index > 0
}

# --- Contradictions ----------------------------------------------------------

# METADATA
# title: API says fresh
# description: The API's top-level fields all say fresh.
api_says_fresh if {
	api_listed
	input.init_state.initialized == false
	input.init_state.cluster_id == ""
	input.init_state.last_index == 0
	input.init_state.last_term == 0
}

# METADATA
# title: Fresh API, raft with state
# description: The API says the candidate is fresh, but its raft server
#   shows state. One of them is not the candidate, or it misreports itself.
#   Permanent, as waiting does not reconcile them.
deny contains {"code": "INIT_STATE_CONTRADICTION", "message": msg} if {
	collected
	api_says_fresh
	count(raft_state_signs) > 0
	msg := sprintf(
		"candidate %s: the API at %s says fresh, but the raft server at %s %s; api_url and raft_addr may point at different nodes, or the node misreports its state: check both belong to one fresh node",
		[candidate_id, api_url, raft_addr, concat(", ", sort(raft_state_signs))],
	)
}

# METADATA
# title: Sources agree
# description: The API, when it answered, reports the raft server's id.
sources_agree if {
	is_array(input.init_state.sources)
	not api_listed
}

sources_agree if {
	api_listed
	is_string(input.init_state.raft.id)
	input.init_state.node_id == input.init_state.raft.id
}

# METADATA
# title: API and raft ids differ
# description: The API reports another node id than the raft server
#   answers with, so api_url and raft_addr point at different nodes.
#   Permanent, as waiting does not reconcile them.
deny contains {"code": "INIT_STATE_CONTRADICTION", "message": msg} if {
	collected
	api_listed
	is_string(input.init_state.node_id)
	is_string(input.init_state.raft.id)
	not sources_agree
	msg := sprintf(
		"candidate %s: the API at %s reports node_id %q, but the raft server at %s answers as %q; api_url and raft_addr point at different nodes: fix the request so both name the candidate",
		[candidate_id, api_url, input.init_state.node_id, raft_addr, input.init_state.raft.id],
	)
}

# --- Identity ----------------------------------------------------------------

# METADATA
# title: Node id matches
# description: The candidate reports the same non-empty id it asks to join as.
node_id_matches if {
	is_string(input.init_state.node_id)
	input.init_state.node_id != ""
	input.init_state.node_id == input.candidate.id
}

# METADATA
# title: Node id mismatch
# description: The node at the candidate's address is not the node named in the request.
deny contains {"code": "NODE_ID_MISMATCH", "message": msg} if {
	collected
	is_string(input.init_state.node_id)
	not node_id_matches
	msg := sprintf(
		"%s reports node_id %q, but the admission asks for candidate id %q; check the request's id and %s",
		[reporter, input.init_state.node_id, candidate_id, addresses],
	)
}

# --- Helpers: values for messages, never undefined ---------------------------

candidate_id := v if {
	v := input.candidate.id
	is_string(v)
} else := "<no id>"

raft_addr := v if {
	v := input.candidate.raft_addr
	is_string(v)
} else := "<no raft_addr>"

api_url := v if {
	v := input.candidate.api_url
	is_string(v)
} else := "<no api_url>"

# Who reports the top-level fields, and the request's fields that point at
# it, for messages: the API when listed, else the raft server.
reporter := sprintf("the raft server at %s", [raft_addr]) if {
	is_array(input.init_state.sources)
	not api_listed
} else := sprintf("the node at %s", [api_url])

addresses := "raft_addr" if {
	no_api
} else := "api_url"

# What must answer for the section to be collected.
sources_hint := sprintf("the raft server at %s answers", [raft_addr]) if {
	no_api
} else := sprintf("%s serves GET /v1/state and the raft server at %s answers", [api_url, raft_addr])

collector_error := v if {
	v := input.init_state.error
	is_string(v)
	v != ""
} else := "no error reported"

# state_field is a field of init_state as JSON ("\"9a1\"", "true"), or "?" when missing.
state_field(field) := v if {
	v := json.marshal(input.init_state[field])
} else := "?"

# a_kind is a JSON type with its article, for messages: "a string", "an array".
a_kind(t) := sprintf("an %s", [t]) if {
	t in {"array", "object"}
} else := sprintf("a %s", [t])

# kind is the JSON type of obj[key], or "missing" when obj is an object
# without key. The else avoids building object.keys(obj) on every call.
kind(obj, key) := t if {
	t := type_name(obj[key])
} else := "missing" if {
	is_object(obj)
}
