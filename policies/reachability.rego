# METADATA
# title: Reachability
# description: |
#   Stage 1. The candidate must be reachable before anything else is asked of
#   it: at least one TCP handshake to its raft address succeeded, the raft
#   server there answered a side-effect-free term-0 pre-vote (raft_rpc) with
#   the candidate's id in its RPC header, and, when the candidate has an API
#   (a non-empty api_url), a GET of it (/v1/state) answered with a 2xx status.
#
#   The raft answer proves a raft server holds raft_addr and calls itself by
#   the candidate's id; it is not cryptographic: whoever holds the address
#   can answer as anyone. A different id is RAFT_ID_MISMATCH (permanent: the
#   request names the wrong node, or another node holds its address); a TCP
#   connection without a raft answer is RAFT_NOT_ANSWERING (retryable).
#
#   A candidate without an API (api_url "") runs nothing but hashicorp/raft:
#   the collector skips the API (api.skipped true, stated, never inferred),
#   and there is no API to judge. With TLS on it cannot prove its identity
#   with a certificate either: IDENTITY_UNPROVEN.
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
#   ({collected, error, raft: {ok, successes, error}, raft_rpc: {ok, id,
#   error}, api: {skipped, ok, status, error, tls: {enabled, verified, uris,
#   dns_names, error}}}).
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
#   that were collected, a raft address that answered as the candidate and
#   either an API that returned 2xx and, with TLS on, a verified certificate
#   naming the candidate, or no API, skipped, with TLS off.
default allow := false

allow if {
	count(deny) == 0
	candidate_valid
	collected
	raft_reachable
	raft_answers_as_candidate
	api_proven
}

# METADATA
# title: API proven
# description: With an api_url, its API answered 2xx and proved the
#   candidate's identity as TLS requires; without one, the collector says it
#   skipped the API and TLS is off, so no certificate was needed.
api_proven if {
	api_expected
	api_called
	api_ok
	api_status_ok
	identity_proven
}

api_proven if {
	no_api
	api_skipped
	tls_off
}

# --- Candidate ---------------------------------------------------------------

# METADATA
# title: Candidate valid
# description: The candidate names itself and its raft address with
#   non-empty strings; its api_url is a string, empty for a candidate that
#   runs only hashicorp/raft.
candidate_valid if {
	is_string(input.candidate.id)
	input.candidate.id != ""
	is_string(input.candidate.raft_addr)
	input.candidate.raft_addr != ""
	is_string(input.candidate.api_url)
}

# METADATA
# title: Candidate malformed
# description: The candidate's id and raft_addr must be non-empty strings,
#   its api_url a string.
deny contains {"code": "CANDIDATE_MALFORMED", "message": msg} if {
	not candidate_valid
	msg := sprintf(
		"candidate must have non-empty string id and raft_addr and a string api_url (empty for a candidate without an API), got %s; fix the admission request",
		[candidate_json],
	)
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
# description: The candidate's api_url is stated empty. It runs only
#   hashicorp/raft, and there is no API to call.
no_api if input.candidate.api_url == ""

# METADATA
# title: API expected
# description: Unless the candidate states it has no API, its API is judged
#   (a malformed api_url does not excuse it).
api_expected if not no_api

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
		"candidate %s: reachability was not collected (%s); check the candidate is running at %s, then retry",
		[candidate_id, collector_error, endpoints],
	)
}

# METADATA
# title: Reachability malformed
# description: raft, raft_rpc and api must be objects with fields of the
#   right types, and api.skipped must say whether the candidate has an API.
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
	"raft_rpc": {"ok": "boolean", "id": "string", "error": "string"},
	"api": {"skipped": "boolean", "ok": "boolean", "status": "number", "error": "string"},
}

# METADATA
# title: Well typed
# description: Every field of schema has its type. It implies that the type
#   part of malformed is empty, so the detailed type checks below only run
#   on facts that are not; keep it in step with schema.
well_typed if {
	is_boolean(input.reachability.raft.ok)
	is_number(input.reachability.raft.successes)
	is_string(input.reachability.raft.error)
	is_boolean(input.reachability.raft_rpc.ok)
	is_string(input.reachability.raft_rpc.id)
	is_string(input.reachability.raft_rpc.error)
	is_boolean(input.reachability.api.skipped)
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

malformed contains sprintf("%s.%s must be %s, got %s", [probe, field, a_kind(want), got]) if {
	not well_typed
	some probe, fields in schema
	is_object(input.reachability[probe])
	some field, want in fields
	got := kind(input.reachability[probe], field)
	got != want
}

# The collector skips the API exactly when the candidate has none.
malformed contains "api.skipped is false, but the candidate has no api_url: there was no API to call" if {
	no_api
	input.reachability.api.skipped == false
}

malformed contains sprintf("api.skipped is true, but the candidate has api_url %s: its API was not called", [api_url]) if {
	has_api
	input.reachability.api.skipped == true
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

# --- Raft RPC ----------------------------------------------------------------

# METADATA
# title: Raft answers
# description: The raft server at raft_addr answered the pre-vote.
raft_answers if input.reachability.raft_rpc.ok == true

# METADATA
# title: Raft answers as candidate
# description: The raft server at raft_addr answered with the candidate's
#   non-empty id in its RPC header. Not cryptographic, as whoever holds the
#   address can answer as anyone.
raft_answers_as_candidate if {
	raft_answers
	is_string(input.candidate.id)
	input.candidate.id != ""
	input.reachability.raft_rpc.id == input.candidate.id
}

# METADATA
# title: Raft not answering
# description: A TCP handshake to raft_addr succeeded, but no raft server
#   answered the pre-vote there (another service holds the port, or the
#   server is starting or overloaded). Retryable.
deny contains {"code": "RAFT_NOT_ANSWERING", "message": msg} if {
	collected
	raft_reachable
	is_object(input.reachability.raft_rpc)
	not raft_answers
	msg := sprintf(
		"candidate %s: raft address %s accepts TCP connections, but no raft server answered a pre-vote there (error: %s); check that the candidate's hashicorp/raft transport listens on that address and not another service, then retry",
		[candidate_id, raft_addr, probe_error("raft_rpc")],
	)
}

# METADATA
# title: Raft id mismatch
# description: The raft server at raft_addr answered as another server id,
#   so the request names the wrong node, or another node holds its address.
#   Permanent, as waiting does not change who holds the address. A
#   malformed candidate is CANDIDATE_MALFORMED instead, with no id to
#   compare.
deny contains {"code": "RAFT_ID_MISMATCH", "message": msg} if {
	collected
	candidate_valid
	raft_answers
	is_string(input.reachability.raft_rpc.id)
	not raft_answers_as_candidate
	msg := sprintf(
		"candidate %s: a raft server answering as %q holds %s, not the candidate %q; check the request's id and raft_addr, or move the other server off that address",
		[candidate_id, input.reachability.raft_rpc.id, raft_addr, candidate_id],
	)
}

# --- API ---------------------------------------------------------------------

# METADATA
# title: API ok
# description: The GET of the candidate's API completed.
api_ok if input.reachability.api.ok == true

# METADATA
# title: API skipped
# description: The collector says it skipped the API, as the candidate has none.
api_skipped if input.reachability.api.skipped == true

# METADATA
# title: API called
# description: The collector says it called the candidate's API.
api_called if input.reachability.api.skipped == false

# METADATA
# title: API unreachable
# description: The candidate has an API, and the GET of it failed.
deny contains {"code": "API_UNREACHABLE", "message": msg} if {
	collected
	api_expected
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
# description: The API answered, but not with 2xx. Only checked when the
#   candidate has an API and api.ok is true, so a failed call is reported
#   once, as API_UNREACHABLE.
deny contains {"code": "API_BAD_STATUS", "message": msg} if {
	collected
	api_expected
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

tls_malformed contains sprintf("tls.%s must be %s, got %s", [field, a_kind(want), got]) if {
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
# title: Identity unproven without an API
# description: TLS is on, but the candidate has no API, so there is no
#   certificate to prove its identity; its raft answer alone is not proof.
deny contains {"code": "IDENTITY_UNPROVEN", "message": msg} if {
	no_api
	tls_on
	msg := sprintf(
		"candidate %s has no api_url, so no certificate can prove its identity, and this cluster runs with TLS (a raft answer can claim any id); give the candidate an API served over HTTPS with a certificate naming it (SAN URI spiffe://<trust domain>/admitd/%s or DNS SAN %s) and set its api_url",
		[candidate_id, candidate_id, candidate_id],
	)
}

# METADATA
# title: Identity mismatch
# description: TLS is on, and the certificate behind the candidate's
#   /v1/state answer is unverified or does not name the candidate. Only
#   checked when api.ok is true, so a failed call is reported once, as
#   API_UNREACHABLE, and stays retryable.
deny contains {"code": "IDENTITY_MISMATCH", "message": msg} if {
	api_expected
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

# Where the candidate should be running, for messages.
endpoints := raft_addr if {
	no_api
} else := sprintf("%s and %s", [raft_addr, api_url])

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
