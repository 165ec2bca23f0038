# METADATA
# title: Catch-up
# description: |
#   Promote stage 2. A staged non-voter gets a vote only once it has caught
#   up with the leader and stayed healthy, as Consul's autopilot requires
#   of a new server: a voter that cannot keep up counts towards the quorum
#   without helping it commit.
#
#   Caught up means, with the thresholds of data.admitd.settings.catch_up:
#   - its log trails the leader's by at most max_lag_entries. The lag is
#     computed here from leader_last_index and last_index (0 when the
#     candidate is ahead), and the reported lag must agree with it;
#   - its last entry is of the leader's term: a leader's first entry of a
#     term is its no-op, so a follower without it has not caught up with
#     this leader at all, whatever the index distance says;
#   - it heard from the leader at most max_last_contact_ms ago (a negative
#     last_contact_ms means never);
#   - the leader has seen it healthy for at least min_healthy_ms.
#   Every one of these can change by waiting, so none is permanent.
#
#   The candidate's side comes from one source, named in sources: its
#   /v1/state ("api"), or, for a candidate without an API, the leader's raft
#   probe of it ("raft"; last_term is then the candidate's current term and
#   last_contact_ms the probe's round trip, since the leader just heard from
#   it). The rules are the same for both.
#
#   Facts: input.phase (must be "promote"), input.candidate.id and
#   input.catch_up ({collected, error, leader_last_index, leader_term,
#   last_index, last_term, lag, last_contact_ms, healthy_for_ms, sources}).
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.catch_up

import data.admitd.settings

# METADATA
# title: Allow
# description: Passes only on positive proof, in a promotion, of well-formed
#   facts and settings and of a candidate that is caught up and stable.
default allow := false

allow if {
	count(deny) == 0
	promote_phase
	collected
	well_typed
	sources_valid
	settings_well_typed
	lag_consistent
	within_lag
	same_term
	recent_contact
	stable
}

# --- Phase -------------------------------------------------------------------

# METADATA
# title: Promote phase
# description: The facts are for a promotion.
promote_phase if input.phase == "promote"

# METADATA
# title: Phase mismatch
# description: The stage decides promotions only; in an admission its
#   facts are not even collected.
deny contains {"code": "PHASE_MISMATCH", "message": msg} if {
	not promote_phase
	msg := sprintf(
		"candidate %s: the catch_up stage only decides promotions, but the facts' phase is %s; list it in admitd.pipeline.promote_stages only",
		[candidate_id, phase_json],
	)
}

# --- Section -----------------------------------------------------------------

# METADATA
# title: Section present
# description: input.catch_up is an object.
section_present if is_object(input.catch_up)

# METADATA
# title: Collected
# description: The collector ran to completion.
collected if input.catch_up.collected == true

# METADATA
# title: Catch-up missing
# description: The facts document has no catch_up section.
deny contains {"code": "CATCH_UP_MISSING", "message": msg} if {
	not section_present
	msg := sprintf(
		"candidate %s: the facts have no catch_up section (an object is required); the collector did not run",
		[candidate_id],
	)
}

# METADATA
# title: Catch-up not collected
# description: The collector failed or timed out; its other fields mean nothing.
deny contains {"code": "CATCH_UP_NOT_COLLECTED", "message": msg} if {
	section_present
	not collected
	msg := sprintf(
		"candidate %s: its catch-up was not collected (%s); check that %s and the cluster has a leader, then retry",
		[candidate_id, collector_error, source_hint],
	)
}

# METADATA
# title: Catch-up malformed
# description: Every field the stage reads must be present with the right
#   type, the leader must have a term and a log, lag must agree with the
#   indexes, and sources must name where the candidate's side came from.
deny contains {"code": "CATCH_UP_MALFORMED", "message": msg} if {
	collected
	count(malformed) > 0
	msg := sprintf(
		"candidate %s: malformed catch_up facts: %s; this is a collector bug",
		[candidate_id, concat(", ", sort(malformed))],
	)
}

# METADATA
# title: Settings malformed
# description: The thresholds in data.admitd.settings.catch_up are missing
#   or not numbers of at least 0. Reported whatever the facts say, since
#   no promotion can be judged without them.
deny contains {"code": "CATCH_UP_MALFORMED", "message": msg} if {
	count(settings_malformed) > 0
	msg := sprintf(
		"candidate %s: malformed catch-up settings: %s; fix data.admitd.settings.catch_up in the policy set",
		[candidate_id, concat(", ", sort(settings_malformed))],
	)
}

# Expected type of every field the stage reads.
schema := {
	"leader_last_index": "number",
	"leader_term": "number",
	"last_index": "number",
	"last_term": "number",
	"lag": "number",
	"last_contact_ms": "number",
	"healthy_for_ms": "number",
	"sources": "array",
}

# METADATA
# title: Well typed
# description: Every field of schema has its type. It implies that the type
#   part of malformed is empty, so the detailed check below only runs on
#   facts that are not; keep it in step with schema.
well_typed if {
	is_number(input.catch_up.leader_last_index)
	is_number(input.catch_up.leader_term)
	is_number(input.catch_up.last_index)
	is_number(input.catch_up.last_term)
	is_number(input.catch_up.lag)
	is_number(input.catch_up.last_contact_ms)
	is_number(input.catch_up.healthy_for_ms)
	is_array(input.catch_up.sources)
}

malformed contains sprintf("%s must be %s, got %s", [field, a_kind(want), got]) if {
	not well_typed
	section_present
	some field, want in schema
	got := kind(input.catch_up, field)
	got != want
}

# A leader has been elected in a term of at least 1 and has appended at
# least its no-op entry: zeros here are a collector that filled nothing in.
malformed contains sprintf("%s must be at least 1 for a cluster with a leader, got %v", [field, n]) if {
	well_typed
	some field in ["leader_last_index", "leader_term"]
	n := input.catch_up[field]
	n < 1
}

malformed contains sprintf("lag %v disagrees with leader_last_index - last_index (%v)", [input.catch_up.lag, lag]) if {
	well_typed
	not lag_consistent
}

# --- Sources -----------------------------------------------------------------

# The sources a collector may list.
source_names := {"api", "raft"}

# METADATA
# title: Sources valid
# description: sources lists at least one source, each "api" or "raft".
sources_valid if {
	is_array(input.catch_up.sources)
	count(input.catch_up.sources) > 0
	every source in input.catch_up.sources {
		source in source_names
	}
}

malformed contains `sources must list where the candidate's side came from ("api" or "raft"), got []` if {
	is_array(input.catch_up.sources)
	count(input.catch_up.sources) == 0
}

malformed contains sprintf(`sources[%d] must be "api" or "raft", got %s`, [i, json.marshal(source)]) if {
	is_array(input.catch_up.sources)
	some i, source in input.catch_up.sources
	not source in source_names
}

# --- Settings ----------------------------------------------------------------

# Every threshold the stage reads.
setting_names := ["max_lag_entries", "max_last_contact_ms", "min_healthy_ms"]

# METADATA
# title: Settings well typed
# description: Every threshold is a number of at least 0.
settings_well_typed if {
	every name in setting_names {
		setting_valid(name)
	}
}

setting_valid(name) if {
	is_number(settings.catch_up[name])
	settings.catch_up[name] >= 0
}

settings_malformed contains "settings.catch_up must be an object" if {
	not settings_object
}

settings_object if is_object(settings.catch_up)

settings_malformed contains sprintf("%s must be a number of at least 0, got %s", [name, json.marshal(value)]) if {
	settings_object
	some name in setting_names
	not setting_valid(name)
	value := object.get(settings.catch_up, name, null)
}

# --- Lag ---------------------------------------------------------------------

# How many entries the candidate trails the leader by; 0 when it is ahead.
lag := max([0, input.catch_up.leader_last_index - input.catch_up.last_index]) if well_typed

# METADATA
# title: Lag consistent
# description: The reported lag is the one the indexes give.
lag_consistent if input.catch_up.lag == lag

# METADATA
# title: Within lag
# description: The candidate trails the leader by at most max_lag_entries.
within_lag if {
	settings_well_typed
	lag <= settings.catch_up.max_lag_entries
}

# METADATA
# title: Lagging
# description: The candidate's log trails the leader's by more than
#   max_lag_entries.
deny contains {"code": "LAGGING", "message": msg} if {
	collected
	well_typed
	settings_well_typed
	not within_lag
	msg := sprintf(
		"candidate %s trails the leader by %v log entries (its last_index %v, the leader's %v), more than max_lag_entries %v; wait for it to catch up, then retry the promotion",
		[candidate_id, lag, input.catch_up.last_index, input.catch_up.leader_last_index, settings.catch_up.max_lag_entries],
	)
}

# --- Term --------------------------------------------------------------------

# METADATA
# title: Same term
# description: The candidate's last entry is of the leader's current term.
same_term if {
	well_typed
	input.catch_up.last_term == input.catch_up.leader_term
}

# METADATA
# title: Stale term
# description: The candidate has no entry of the leader's term yet, not
#   even its no-op, so it has not caught up with this leader.
deny contains {"code": "STALE_TERM", "message": msg} if {
	collected
	well_typed
	not same_term
	msg := sprintf(
		"candidate %s: its last log entry is of term %v, the leader's term is %v; it has not received this leader's entries yet: wait for it to catch up, then retry the promotion",
		[candidate_id, input.catch_up.last_term, input.catch_up.leader_term],
	)
}

# --- Contact -----------------------------------------------------------------

# METADATA
# title: Recent contact
# description: The candidate heard from the leader at most
#   max_last_contact_ms ago; a negative value means never.
recent_contact if {
	settings_well_typed
	input.catch_up.last_contact_ms >= 0
	input.catch_up.last_contact_ms <= settings.catch_up.max_last_contact_ms
}

# METADATA
# title: No recent contact
# description: The candidate has never heard from the leader, or not for
#   longer than max_last_contact_ms.
deny contains {"code": "NO_RECENT_CONTACT", "message": msg} if {
	collected
	well_typed
	settings_well_typed
	not recent_contact
	msg := sprintf(
		"candidate %s %s, more than max_last_contact_ms %v allows; check the leader reaches it at %s, then retry the promotion",
		[candidate_id, contact_text, settings.catch_up.max_last_contact_ms, raft_addr],
	)
}

contact_text := "has never heard from the leader" if {
	input.catch_up.last_contact_ms < 0
} else := text if {
	is_number(input.catch_up.last_contact_ms)
	text := sprintf("last heard from the leader %v ms ago", [round(input.catch_up.last_contact_ms)])
}

# --- Stability ---------------------------------------------------------------

# METADATA
# title: Stable
# description: The leader has seen the candidate healthy for at least
#   min_healthy_ms without a break.
stable if {
	settings_well_typed
	input.catch_up.healthy_for_ms >= settings.catch_up.min_healthy_ms
}

# METADATA
# title: Not stable
# description: The candidate has not been healthy long enough; a break in
#   its health starts the count again.
deny contains {"code": "NOT_STABLE", "message": msg} if {
	collected
	well_typed
	settings_well_typed
	not stable
	msg := sprintf(
		"the leader has seen candidate %s healthy for %v ms, less than min_healthy_ms %v; retry the promotion in %v ms if it stays healthy",
		[
			candidate_id, round(input.catch_up.healthy_for_ms), settings.catch_up.min_healthy_ms,
			round(settings.catch_up.min_healthy_ms - input.catch_up.healthy_for_ms),
		],
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

# What must answer for the section to be collected.
source_hint := sprintf("the raft server at %s answers the leader's probe", [raft_addr]) if {
	input.candidate.api_url == ""
} else := sprintf("%s serves GET /v1/state", [api_url])

phase_json := v if {
	v := json.marshal(input.phase)
} else := "missing"

collector_error := v if {
	v := input.catch_up.error
	is_string(v)
	v != ""
} else := "no error reported"

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
