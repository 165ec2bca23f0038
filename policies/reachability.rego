# METADATA
# title: Reachability
# description: |
#   Stage 1. The candidate must be reachable before anything else is asked of
#   it: at least one TCP handshake to its raft address succeeded, and a GET of
#   its API (/v1/state) answered with a 2xx status.
#
#   With TLS on (input.reachability.api.tls.enabled), the /v1/state answer
#   must also come with a verified certificate naming the candidate: a SAN
#   URI spiffe://<trust domain>/admitd/<id> or a DNS SAN equal to the id;
#   otherwise IDENTITY_MISMATCH. A tls object that is missing or malformed
#   while reachability was collected is IDENTITY_UNPROVEN: "TLS off" must be
#   stated, never inferred from absence. Both pipelines (admission and
#   promote) run this stage first, so the identity is proven again at every
#   promotion.
#
#   Facts: input.candidate ({id, raft_addr, api_url}) and input.reachability
#   ({collected, error, raft: {ok, successes, error}, api: {ok, status,
#   error, tls: {enabled, verified, uris, dns_names, error}}}).
#
#   API_BAD_STATUS is only reported when api.ok is true: when the call failed
#   there is no status, and API_UNREACHABLE already says why. For the same
#   reason IDENTITY_MISMATCH is only reported when api.ok is true: a call
#   that failed (a refused connection, a failed TLS handshake) carried no
#   answer whose certificate could be judged, and a transient failure must
#   not become a permanent deny.
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.reachability

# METADATA
# title: Allow
# description: Passes only on positive proof of a well-formed candidate, facts
#   that were collected, a raft address that answered, an API that returned
#   2xx and, with TLS on, a verified certificate naming the candidate.
default allow := false

allow if {
	count(deny) == 0
	candidate_valid
	collected
	raft_reachable
	api_ok
	api_status_ok
	identity_proven
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

# --- TLS identity ------------------------------------------------------------

# METADATA
# title: Identity proven
# description: TLS is stated to be off, or the candidate's verified
#   certificate names it.
identity_proven if tls_off

identity_proven if certificate_names_candidate

api_present if is_object(input.reachability.api)

tls_present if is_object(input.reachability.api.tls)

tls_well_formed if {
	tls_present
	count(tls_malformed) == 0
}

tls_off if {
	collected
	tls_well_formed
	input.reachability.api.tls.enabled == false
}

tls_on if {
	collected
	tls_well_formed
	input.reachability.api.tls.enabled == true
}

# METADATA
# title: Certificate names candidate
# description: A verified certificate carries the candidate's id as a SPIFFE
#   URI (any trust domain, path /admitd/<id>) or as a DNS name.
certificate_names_candidate if {
	tls_on
	input.reachability.api.tls.verified == true
	some uri in input.reachability.api.tls.uris
	spiffe_names(uri, input.candidate.id)
}

certificate_names_candidate if {
	tls_on
	input.reachability.api.tls.verified == true
	some name in input.reachability.api.tls.dns_names
	is_string(name)
	name != ""
	name == input.candidate.id
}

# spiffe_names holds when uri is spiffe://<domain>/admitd/<id>, compared as
# whole strings so spiffe://d/admitd/n4/x does not name n4.
spiffe_names(uri, id) if {
	is_string(uri)
	is_string(id)
	id != ""
	startswith(uri, "spiffe://")
	rest := substring(uri, count("spiffe://"), -1)
	domain := split(rest, "/")[0]
	domain != ""
	rest == concat("/", [domain, "admitd", id])
}

# Expected type of every tls field.
tls_schema := {
	"enabled": "boolean",
	"verified": "boolean",
	"uris": "array",
	"dns_names": "array",
	"error": "string",
}

# Only checked when api is an object: otherwise REACHABILITY_MALFORMED
# already says so, and there is no tls to look for.
tls_malformed contains "tls must be an object" if {
	collected
	api_present
	not tls_present
}

# tls_well_typed implies the check below finds nothing; keep it in step
# with tls_schema.
tls_well_typed if {
	is_boolean(input.reachability.api.tls.enabled)
	is_boolean(input.reachability.api.tls.verified)
	is_array(input.reachability.api.tls.uris)
	is_array(input.reachability.api.tls.dns_names)
	is_string(input.reachability.api.tls.error)
}

tls_malformed contains sprintf("tls.%s must be a %s, got %s", [field, want, got]) if {
	not tls_well_typed
	collected
	tls_present
	some field, want in tls_schema
	got := kind(input.reachability.api.tls, field)
	got != want
}

# METADATA
# title: Identity unproven
# description: Reachability was collected but says nothing usable about TLS,
#   so neither "TLS off" nor a certificate identity is proven.
deny contains {"code": "IDENTITY_UNPROVEN", "message": msg} if {
	count(tls_malformed) > 0
	msg := sprintf(
		"candidate %s: the facts do not prove the API's TLS identity: reachability.api.%s; a collector of this version always reports it",
		[candidate_id, concat(", ", sort(tls_malformed))],
	)
}

# METADATA
# title: Identity mismatch
# description: TLS is on, and the certificate behind the candidate's
#   /v1/state answer is unverified or does not name the candidate. Only
#   checked when api.ok is true, so a failed call is reported once, as
#   API_UNREACHABLE, and stays retryable.
deny contains {"code": "IDENTITY_MISMATCH", "message": msg} if {
	api_ok
	tls_on
	not certificate_names_candidate
	tls := input.reachability.api.tls
	msg := sprintf(
		"candidate %s: the API at %s did not prove that identity (certificate verified: %v, SAN URIs: %v, DNS SANs: %v, error: %s); its certificate needs SAN URI spiffe://<trust domain>/admitd/%s or DNS SAN %s",
		[candidate_id, api_url, tls.verified, tls.uris, tls.dns_names, tls_error, candidate_id, candidate_id],
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

tls_error := v if {
	v := input.reachability.api.tls.error
	v != ""
} else := "none reported"

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
