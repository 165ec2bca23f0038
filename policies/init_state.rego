# METADATA
# title: Init state
# description: |
#   Stage 2. The candidate must be a fresh node: not initialized, no cluster id,
#   no raft log (last_index and last_term 0), and it must call itself by the
#   id it asks to join as. Adding a node that already has raft state would
#   merge two histories; hashicorp/raft does not protect against that.
#
#   Every fact is proven, never inferred from absence: a missing "initialized"
#   field is INIT_STATE_MALFORMED, not "not initialized". Existing state
#   (cluster_id, last_index, last_term) denies whatever "initialized" says.
#
#   The TLS identity behind the /v1/state answer (IDENTITY_MISMATCH,
#   IDENTITY_UNPROVEN) is checked by the reachability stage, which runs
#   before this one and in the promote pipeline too.
#
#   Facts: input.candidate ({id, api_url}) and input.init_state ({collected,
#   error, node_id, initialized, cluster_id, last_index, last_term}).
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.init_state

# METADATA
# title: Allow
# description: Passes only on positive proof of a fresh node with the right id.
default allow := false

allow if {
	count(deny) == 0
	collected
	input.init_state.initialized == false
	input.init_state.cluster_id == ""
	input.init_state.last_index == 0
	input.init_state.last_term == 0
	node_id_matches
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
		"candidate %s: init state was not collected (%s); check that %s serves GET /v1/state, then retry",
		[candidate_id, collector_error, api_url],
	)
}

# METADATA
# title: Init state malformed
# description: Every field the stage reads must be present with the right type.
deny contains {"code": "INIT_STATE_MALFORMED", "message": msg} if {
	collected
	count(malformed) > 0
	msg := sprintf(
		"candidate %s: malformed init state: %s; the candidate must report every field of GET /v1/state",
		[candidate_id, concat(", ", sort(malformed))],
	)
}

# Expected type of every field the stage reads.
schema := {
	"node_id": "string",
	"cluster_id": "string",
	"initialized": "boolean",
	"last_index": "number",
	"last_term": "number",
}

# METADATA
# title: Well typed
# description: Every field of schema has its type. It implies that malformed
#   is empty, so the detailed check below only runs on facts that are not;
#   keep it in step with schema.
well_typed if {
	is_string(input.init_state.node_id)
	is_string(input.init_state.cluster_id)
	is_boolean(input.init_state.initialized)
	is_number(input.init_state.last_index)
	is_number(input.init_state.last_term)
}

malformed contains sprintf("%s must be a %s, got %s", [field, want, got]) if {
	not well_typed
	section_present
	some field, want in schema
	got := kind(input.init_state, field)
	got != want
}

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
		"the node at %s reports node_id %q, but the admission asks for candidate id %q; check the request's id and api_url",
		[api_url, input.init_state.node_id, candidate_id],
	)
}

# --- Helpers: values for messages, never undefined ---------------------------

candidate_id := v if {
	v := input.candidate.id
	is_string(v)
} else := "<no id>"

api_url := v if {
	v := input.candidate.api_url
	is_string(v)
} else := "<no api_url>"

collector_error := v if {
	v := input.init_state.error
	is_string(v)
	v != ""
} else := "no error reported"

# state_field is a field of init_state as JSON ("\"9a1\"", "true"), or "?" when missing.
state_field(field) := v if {
	v := json.marshal(input.init_state[field])
} else := "?"

# kind is the JSON type of obj[key], or "missing" when obj is an object
# without key. The else avoids building object.keys(obj) on every call.
kind(obj, key) := t if {
	t := type_name(obj[key])
} else := "missing" if {
	is_object(obj)
}
