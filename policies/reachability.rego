# METADATA
# title: Reachability
# description: |
#   Stage 1. The candidate must be reachable before anything else is asked of
#   it: at least one TCP handshake to its raft address succeeded, and a GET of
#   its API (/v1/state) answered with a 2xx status.
#
#   Facts: input.candidate ({id, raft_addr, api_url}) and input.reachability
#   ({collected, error, raft: {ok, successes, error}, api: {ok, status, error}}).
#
#   API_BAD_STATUS is only reported when api.ok is true: when the call failed
#   there is no status, and API_UNREACHABLE already says why.
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.reachability

# METADATA
# title: Allow
# description: Passes only on positive proof of a well-formed candidate, facts
#   that were collected, a raft address that answered and an API that returned 2xx.
default allow := false

allow if {
	count(deny) == 0
	candidate_valid
	collected
	raft_reachable
	api_ok
	api_status_ok
}

# --- Candidate ---------------------------------------------------------------

# METADATA
# title: Candidate valid
# description: The candidate names itself with non-empty strings.
candidate_valid if {
	is_string(input.candidate.id)
	input.candidate.id != ""
	is_string(input.candidate.raft_addr)
	input.candidate.raft_addr != ""
	is_string(input.candidate.api_url)
	input.candidate.api_url != ""
}

# METADATA
# title: Candidate malformed
# description: The candidate's id, raft_addr and api_url must be non-empty strings.
deny contains {"code": "CANDIDATE_MALFORMED", "message": msg} if {
	not candidate_valid
	msg := sprintf(
		"candidate must have non-empty string id, raft_addr and api_url, got %s; fix the admission request",
		[candidate_json],
	)
}

# --- Section -----------------------------------------------------------------

# METADATA
# title: Section present
# description: input.reachability is an object.
section_present if is_object(input.reachability)

# METADATA
# title: Collected
# description: The collector ran to completion.
collected if input.reachability.collected == true

# METADATA
# title: Reachability missing
# description: The facts document has no reachability section.
deny contains {"code": "REACHABILITY_MISSING", "message": msg} if {
	not section_present
	msg := sprintf(
		"candidate %s: the facts have no reachability section (an object is required); the collector did not run",
		[candidate_id],
	)
}

# METADATA
# title: Reachability not collected
# description: The collector failed or timed out; its other fields mean nothing.
deny contains {"code": "REACHABILITY_NOT_COLLECTED", "message": msg} if {
	section_present
	not collected
	msg := sprintf(
		"candidate %s: reachability was not collected (%s); check the candidate is running at %s and %s, then retry",
		[candidate_id, collector_error, raft_addr, api_url],
	)
}

# METADATA
# title: Reachability malformed
# description: raft and api must be objects with fields of the right types.
deny contains {"code": "REACHABILITY_MALFORMED", "message": msg} if {
	collected
	count(malformed) > 0
	msg := sprintf(
		"candidate %s: malformed reachability facts: %s; this is a collector bug",
		[candidate_id, concat(", ", sort(malformed))],
	)
}

# Expected type of every field the stage reads, by probe.
schema := {
	"raft": {"ok": "boolean", "successes": "number", "error": "string"},
	"api": {"ok": "boolean", "status": "number", "error": "string"},
}

# METADATA
# title: Well typed
# description: Every field of schema has its type. It implies that malformed
#   is empty, so the detailed checks below only run on facts that are not;
#   keep it in step with schema.
well_typed if {
	is_boolean(input.reachability.raft.ok)
	is_number(input.reachability.raft.successes)
	is_string(input.reachability.raft.error)
	is_boolean(input.reachability.api.ok)
	is_number(input.reachability.api.status)
	is_string(input.reachability.api.error)
}

malformed contains sprintf("%s must be an object, got %s", [probe, got]) if {
	not well_typed
	section_present
	some probe, _ in schema
	got := kind(input.reachability, probe)
	got != "object"
}

malformed contains sprintf("%s.%s must be a %s, got %s", [probe, field, want, got]) if {
	not well_typed
	some probe, fields in schema
	is_object(input.reachability[probe])
	some field, want in fields
	got := kind(input.reachability[probe], field)
	got != want
}

# --- Raft --------------------------------------------------------------------

# METADATA
# title: Raft reachable
# description: The raft probe says ok and at least one handshake succeeded.
raft_reachable if {
	input.reachability.raft.ok == true
	is_number(input.reachability.raft.successes)
	input.reachability.raft.successes >= 1
}

# METADATA
# title: Raft unreachable
# description: No TCP handshake to the candidate's raft address succeeded.
deny contains {"code": "RAFT_UNREACHABLE", "message": msg} if {
	collected
	is_object(input.reachability.raft)
	not raft_reachable
	msg := sprintf(
		"candidate %s: raft address %s is unreachable (%s of %s TCP handshakes succeeded, error: %s); check the node listens on that address and that firewalls allow it",
		[candidate_id, raft_addr, probe_field("raft", "successes"), probe_field("raft", "attempts"), probe_error("raft")],
	)
}

# --- API ---------------------------------------------------------------------

# METADATA
# title: API ok
# description: The GET of the candidate's API completed.
api_ok if input.reachability.api.ok == true

# METADATA
# title: API unreachable
# description: The GET of the candidate's API failed.
deny contains {"code": "API_UNREACHABLE", "message": msg} if {
	collected
	is_object(input.reachability.api)
	not api_ok
	msg := sprintf(
		"candidate %s: API %s is unreachable (error: %s); check the node serves HTTP at that URL",
		[candidate_id, api_url, probe_error("api")],
	)
}

# METADATA
# title: API status ok
# description: The API answered with a 2xx status.
api_status_ok if {
	is_number(input.reachability.api.status)
	input.reachability.api.status >= 200
	input.reachability.api.status <= 299
}

# METADATA
# title: API bad status
# description: The API answered, but not with 2xx. Only checked when api.ok is
#   true, so a failed call is reported once, as API_UNREACHABLE.
deny contains {"code": "API_BAD_STATUS", "message": msg} if {
	collected
	api_ok
	not api_status_ok
	msg := sprintf(
		"candidate %s: API %s answered with status %s, want 2xx; check the node is healthy and that api_url points at admitd",
		[candidate_id, api_url, probe_field("api", "status")],
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

candidate_json := v if {
	v := json.marshal(input.candidate)
} else := "nothing"

collector_error := v if {
	v := input.reachability.error
	is_string(v)
	v != ""
} else := "no error reported"

probe_error(probe) := v if {
	v := input.reachability[probe].error
	is_string(v)
	v != ""
} else := "none reported"

# probe_field is a probe's field as JSON ("3", "\"x\""), or "?" when missing.
probe_field(probe, field) := v if {
	v := json.marshal(input.reachability[probe][field])
} else := "?"

# kind is the JSON type of obj[key], or "missing" when obj is an object
# without key. The else avoids building object.keys(obj) on every call.
kind(obj, key) := t if {
	t := type_name(obj[key])
} else := "missing" if {
	is_object(obj)
}
