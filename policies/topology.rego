# METADATA
# title: Topology
# description: |
#   Stage 3, the last shipped stage of every pipeline and the only one of
#   a removal. The cluster must be able to take the membership change asked
#   for (input.change) safely right now: it has a leader, the candidate is
#   placed as the change requires (its id and raft address not yet in the
#   configuration when added, the staged non-voter when promoted, a member
#   other than the leader when removed or demoted), and after the change a
#   quorum of the voters is healthy.
#
#   The change is stated, never inferred: "add_voter" (a direct join) or
#   "add_nonvoter" (the first step of a staged join) in the admit phase,
#   "promote" in the promote phase, "remove" (take a member out of the
#   configuration) or "demote" (a voter back to non-voter) in the remove
#   phase. Anything else, or none, is CHANGE_MALFORMED.
#
#   The quorum rule is etcd's strict reconfiguration check
#   (etcd server/etcdserver/api/membership, IsReadyToAddVotingMember):
#   with n voters today (non-voters do not count), a change that adds a
#   voter (add_voter, promote) makes n+1 voters needing floor((n+1)/2)+1 of
#   them for quorum; the healthy voters must already make that quorum, or
#   the change can leave the cluster unable to commit anything. The one
#   exception, as in etcd, is a single healthy voter growing to two. A
#   non-voter add (add_nonvoter) leaves the n voters and their quorum
#   floor(n/2)+1 as they are; the healthy voters must make that quorum to
#   commit the change at all.
#
#   In a staged join the stage runs twice. Admitting the candidate as a
#   non-voter (change "add_nonvoter") is decided as above, and refused
#   while max_staged non-voters are already in stage (STAGING_FULL); a
#   direct add_voter takes no staging slot. Promoting it (phase "promote")
#   requires instead that it is in the configuration once, as a non-voter
#   at its raft address, and listed in staged; no other member may use its
#   id or address, and the quorum rule is the voter add's: its vote is not
#   counted on before it has one, so a promotion that became unsafe since
#   the admission is refused. A candidate the leader sees unhealthy is not
#   promoted either (CANDIDATE_UNHEALTHY), as raft-autopilot refuses to
#   promote an unhealthy server: once a voter, it would count against the
#   quorum from the start.
#
#   In the remove phase the candidate is the member to remove or demote,
#   found in the configuration by id as raft's RemoveServer and
#   DemoteVoter find it (NOT_A_MEMBER otherwise). The stage needs nothing
#   from the member itself, which is often dead: the facts have no
#   reachability, init_state or catch_up. It refuses to remove or demote
#   the leader (REMOVES_LEADER: transfer leadership first), the only voter
#   (LAST_VOTER), and to demote a non-voter (NOT_A_VOTER). Taking a vote
#   away is etcd's IsReadyToRemoveVotingMember: n voters become n-1,
#   needing floor((n-1)/2)+1 of them; the healthy voters other than the
#   candidate must make that quorum (QUORUM_UNSAFE). Removing a non-voter
#   changes neither the voters nor their quorum, so it is allowed whatever
#   their health. Tombstones keep removed ids out, so they do not stop a
#   removal.
#
#   An address is compared twice, and either match denies
#   (DUPLICATE_ADDRESS): as spelled, and by what it resolves to. The
#   collector resolves the candidate's raft_addr (topology.candidate_address)
#   and every member's and the leader's address to canonical_addresses, the
#   endpoints a dial reaches ("127.0.0.1:39811", "[::1]:39811"), so
#   "localhost:39811", "127.0.0.1:039811" and "[::ffff:127.0.0.1]:39811" are
#   all n2 at 127.0.0.1:39811. Two addresses are the same when their
#   canonical sets share an endpoint; distinct IPs are distinct addresses,
#   loopback ones too (127.0.0.2 is not 127.0.0.1, as only a listener bound
#   to 0.0.0.0 answers on both). An address that did not resolve cannot be
#   proven distinct: adding or promoting, the stage then denies with
#   ADDRESS_UNRESOLVED (not permanent: DNS can recover, a dead member can be
#   removed), whether it is the candidate's or a member's it is compared
#   with. Removing compares no addresses and needs none resolved.
#
#   Facts: input.phase, input.change, input.topology ({collected, error,
#   config_index, leader: {id, address, canonical_addresses,
#   address_error}, servers: [{id, address, canonical_addresses,
#   address_error, suffrage, healthy}], tombstones, staged, max_staged,
#   candidate_address: {address, canonical_addresses, address_error}}) and
#   input.candidate ({id, raft_addr}). "healthy" is the leader's view;
#   candidate_address is required adding or promoting, and its address
#   must be the candidate's raft_addr.
#
#   Writing rules: negate a helper rule (`not collected`), never a call on
#   input (`not is_object(input.x)`): OPA leaves the latter undefined, not
#   true, when input.x is missing (open-policy-agent/opa#1877).
package admitd.stages.topology

# METADATA
# title: Allow
# description: Passes only on positive proof of a stated change, a
#   well-formed topology with a leader, a candidate placed as its phase
#   requires, and a safe quorum.
default allow := false

allow if {
	count(deny) == 0
	change_valid
	candidate_valid
	collected
	well_typed
	has_leader
	servers_well_formed
	placement_ok
	tombstones_ok
	quorum_safe
}

# METADATA
# title: Placement ok
# description: Admitting, the candidate is new and, as a non-voter, a
#   staging slot is free; promoting, it is the staged non-voter, alone at
#   its address and healthy; removing, it is a member other than the
#   leader; demoting, it is also a voter.
placement_ok if {
	adds_voter_directly
	candidate_is_new
}

placement_ok if {
	adds_nonvoter
	candidate_is_new
	staging_open
}

placement_ok if {
	promote_phase
	candidate_staged
	address_unique
	candidate_healthy
}

placement_ok if {
	removes_member
	candidate_is_member
	not_the_leader
}

placement_ok if {
	demotes_voter
	candidate_is_member
	candidate_votes
	not_the_leader
}

# --- Phase -------------------------------------------------------------------

# The phase the facts are for. None stated is an admission, the stricter
# path: a staged non-voter is then a duplicate of itself and is refused.
phase := p if {
	p := input.phase
	p in {"admit", "promote", "remove"}
} else := "admit" if {
	not phase_stated
}

# As the engine reads it: a phase of null or "" is none.
phase_stated if {
	input.phase != null
	input.phase != ""
}

# METADATA
# title: Admit phase
# description: The facts are for an admission (phase "admit", or none).
admit_phase if phase == "admit"

# METADATA
# title: Promote phase
# description: The facts are for the promotion of a staged non-voter.
promote_phase if phase == "promote"

# METADATA
# title: Remove phase
# description: The facts are for the removal or the demotion of a member.
remove_phase if phase == "remove"

# METADATA
# title: Phase mismatch
# description: The facts state a phase the stage does not know.
deny contains {"code": "PHASE_MISMATCH", "message": msg} if {
	not phase_known
	msg := sprintf(
		"candidate %v: the facts' phase is %s, want \"admit\", \"promote\" or \"remove\"; fix the collector",
		[candidate_id, json.marshal(input.phase)],
	)
}

# --- Change ------------------------------------------------------------------

# The changes each phase may ask for.
changes := {
	"admit": {"add_voter", "add_nonvoter"},
	"promote": {"promote"},
	"remove": {"remove", "demote"},
}

# METADATA
# title: Change valid
# description: The facts state a change their phase allows.
change_valid if input.change in changes[phase]

# METADATA
# title: Adds a voter directly
# description: Admitting, the candidate joins as a voter at once.
adds_voter_directly if {
	admit_phase
	input.change == "add_voter"
}

# METADATA
# title: Adds a non-voter
# description: Admitting, the candidate joins as a non-voter, to be
#   promoted later. It changes neither the voters nor their quorum.
adds_nonvoter if {
	admit_phase
	input.change == "add_nonvoter"
}

# METADATA
# title: Phase known
# description: The facts are for a phase the stage knows.
phase_known if admit_phase

phase_known if promote_phase

phase_known if remove_phase

# METADATA
# title: Removes a member
# description: The member is taken out of the configuration, whatever its
#   suffrage.
removes_member if {
	remove_phase
	input.change == "remove"
}

# METADATA
# title: Demotes a voter
# description: The member stays in the configuration, as a non-voter.
demotes_voter if {
	remove_phase
	input.change == "demote"
}

# METADATA
# title: Change malformed
# description: The facts do not state a change their phase allows. A
#   missing change is not taken for any of them.
deny contains {"code": "CHANGE_MALFORMED", "message": msg} if {
	phase_known
	not change_valid
	msg := sprintf(
		"candidate %v: the facts' change is %s, want %s in the %s phase; the collector must state which membership change is asked for",
		[candidate_id, change_json, concat(" or ", [sprintf("%q", [c]) | some c in sort(changes[phase])]), phase],
	)
}

# --- Candidate ---------------------------------------------------------------

# METADATA
# title: Candidate valid
# description: The candidate's id and raft address, compared with the members
#   below, are non-empty strings; removing, the raft address may be empty.
candidate_valid if {
	is_string(input.candidate.id)
	input.candidate.id != ""
	raft_addr_valid
}

# METADATA
# title: Raft address valid
# description: A non-empty string. A removal names its member by id, as
#   raft does, and one that is not in the configuration has no address to
#   give, so in the remove phase any string will do.
raft_addr_valid if {
	is_string(input.candidate.raft_addr)
	input.candidate.raft_addr != ""
}

raft_addr_valid if {
	remove_phase
	is_string(input.candidate.raft_addr)
}

# METADATA
# title: Candidate malformed
# description: The candidate's id and raft_addr must be non-empty strings
#   (removing, raft_addr may be empty).
deny contains {"code": "CANDIDATE_MALFORMED", "message": msg} if {
	not candidate_valid
	msg := sprintf(
		"candidate must have %s, got %s; fix the %s request",
		[candidate_wants, candidate_json, request_kind],
	)
}

candidate_wants := "a non-empty string id and a string raft_addr" if {
	remove_phase
} else := "non-empty string id and raft_addr"

request_kind := "removal" if {
	remove_phase
} else := "admission"

# --- Section -----------------------------------------------------------------

# METADATA
# title: Section present
# description: input.topology is an object.
section_present if is_object(input.topology)

# METADATA
# title: Collected
# description: The collector ran to completion.
collected if input.topology.collected == true

# METADATA
# title: Topology missing
# description: The facts document has no topology section.
deny contains {"code": "TOPOLOGY_MISSING", "message": msg} if {
	not section_present
	msg := sprintf(
		"candidate %v: the facts have no topology section (an object is required); the collector did not run",
		[candidate_id],
	)
}

# METADATA
# title: Topology not collected
# description: The collector failed or timed out; its other fields mean nothing.
deny contains {"code": "TOPOLOGY_NOT_COLLECTED", "message": msg} if {
	section_present
	not collected
	msg := sprintf(
		"candidate %v: the cluster topology was not collected (%s); check the cluster has a leader, then retry",
		[candidate_id, collector_error],
	)
}

# METADATA
# title: Topology malformed
# description: config_index, leader, tombstones, staged, max_staged and
#   every server must have fields of the right types.
deny contains {"code": "TOPOLOGY_MALFORMED", "message": msg} if {
	collected
	count(malformed) > 0
	msg := sprintf(
		"candidate %v: malformed topology: %s; this is a collector bug",
		[candidate_id, concat(", ", sort(malformed))],
	)
}

# METADATA
# title: Well typed
# description: Every field the stage reads has its type, checked in one pass
#   over the servers. It implies that malformed is empty, so the detailed
#   checks below only run on facts that are not.
well_typed if {
	is_number(input.topology.config_index)
	is_string(input.topology.leader.id)
	is_string(input.topology.leader.address)
	resolution_well_formed(input.topology.leader)
	candidate_address_ok
	tombstones_well_formed
	staged_well_formed
	max_staged_well_formed
	servers_well_formed
}

# METADATA
# title: Servers well formed
# description: servers is an array of objects with a string id and address,
#   canonical_addresses an array of strings, a string address_error, a
#   suffrage of "voter" or "nonvoter" and a boolean healthy, so no server
#   has server_problems.
servers_well_formed if {
	is_array(input.topology.servers)
	count(well_formed_servers) == count(input.topology.servers)
}

well_formed_servers := [i |
	some i, server in input.topology.servers
	is_string(server.id)
	is_string(server.address)
	resolution_well_formed(server)
	server.suffrage in suffrages
	is_boolean(server.healthy)
]

malformed contains sprintf("config_index must be a number, got %s", [kind(input.topology, "config_index")]) if {
	not well_typed
	section_present
	kind(input.topology, "config_index") != "number"
}

malformed contains sprintf("leader must be an object, got %s", [kind(input.topology, "leader")]) if {
	not well_typed
	section_present
	kind(input.topology, "leader") != "object"
}

malformed contains sprintf("leader.%s must be a string, got %s", [field, got]) if {
	not well_typed
	is_object(input.topology.leader)
	some field in ["id", "address"]
	got := kind(input.topology.leader, field)
	got != "string"
}

malformed contains sprintf("leader.%s", [problem]) if {
	not well_typed
	is_object(input.topology.leader)
	some problem in resolution_problems(input.topology.leader)
}

malformed contains sprintf("candidate_address must be an object, got %s", [kind(input.topology, "candidate_address")]) if {
	not well_typed
	section_present
	not remove_phase
	kind(input.topology, "candidate_address") != "object"
}

malformed contains sprintf("candidate_address.%s", [problem]) if {
	not well_typed
	not remove_phase
	is_object(input.topology.candidate_address)
	some problem in resolution_problems(input.topology.candidate_address)
}

# The collector resolved another address than the one judged: its
# canonical addresses prove nothing about the candidate's.
malformed contains sprintf("candidate_address.address %s is not the candidate's raft_addr %s", [json.marshal(input.topology.candidate_address.address), json.marshal(input.candidate.raft_addr)]) if {
	not well_typed
	not remove_phase
	candidate_valid
	is_object(input.topology.candidate_address)
	input.topology.candidate_address.address != input.candidate.raft_addr
}

malformed contains sprintf("servers must be an array, got %s", [kind(input.topology, "servers")]) if {
	not well_typed
	section_present
	kind(input.topology, "servers") != "array"
}

malformed contains sprintf("tombstones must be an array of strings, got %s", [kind(input.topology, "tombstones")]) if {
	not well_typed
	section_present
	not tombstones_well_formed
}

tombstones_well_formed if {
	is_array(input.topology.tombstones)
	every id in input.topology.tombstones {
		is_string(id)
	}
}

malformed contains sprintf("staged must be an array of strings, got %s", [kind(input.topology, "staged")]) if {
	not well_typed
	section_present
	not staged_well_formed
}

staged_well_formed if {
	is_array(input.topology.staged)
	every id in input.topology.staged {
		is_string(id)
	}
}

# Fewer than one slot would refuse every staged join for good.
malformed contains sprintf("max_staged must be a number of at least 1, got %s", [max_staged_json]) if {
	not well_typed
	section_present
	not max_staged_well_formed
}

max_staged_well_formed if {
	is_number(input.topology.max_staged)
	input.topology.max_staged >= 1
}

malformed contains sprintf("servers[%d] %s", [i, problem]) if {
	not servers_well_formed
	is_array(input.topology.servers)
	some i, server in input.topology.servers
	some problem in server_problems(server)
}

# Expected type of every server field the stage reads.
server_schema := object.union(
	{"id": "string", "address": "string", "suffrage": "string", "healthy": "boolean"},
	resolution_schema,
)

# Expected type of the fields of a resolved address: a server, the leader,
# candidate_address.
resolution_schema := {"canonical_addresses": "array", "address_error": "string"}

# METADATA
# title: Resolution well formed
# description: obj carries an address as the collector resolved it, with
#   canonical_addresses an array of strings and address_error a string.
resolution_well_formed(obj) if {
	is_array(obj.canonical_addresses)
	every a in obj.canonical_addresses {
		is_string(a)
	}
	is_string(obj.address_error)
}

resolution_problems(obj) := {sprintf("%s must be %s, got %s", [field, with_article(want), got]) |
	some field, want in resolution_schema
	got := kind(obj, field)
	got != want
} | canonical_element_problems(obj)

canonical_element_problems(obj) := {"canonical_addresses must be an array of strings" |
	is_array(obj.canonical_addresses)
	some a in obj.canonical_addresses
	not is_string(a)
}

with_article(t) := sprintf("an %s", [t]) if {
	t in {"array", "object"}
} else := sprintf("a %s", [t])

# METADATA
# title: Candidate address ok
# description: Adding or promoting, topology.candidate_address is the
#   candidate's raft_addr, well formed as resolved. Removing compares no
#   addresses, and the facts have none.
candidate_address_ok if remove_phase

candidate_address_ok if {
	not remove_phase
	candidate_address_well_formed
}

candidate_address_well_formed if {
	is_object(input.topology.candidate_address)
	input.topology.candidate_address.address == input.candidate.raft_addr
	resolution_well_formed(input.topology.candidate_address)
}

suffrages := {"voter", "nonvoter"}

server_problems(server) := {sprintf("must be an object, got %s", [type_name(server)])} if {
	not is_object(server)
}

server_problems(server) := problems if {
	is_object(server)
	types := {sprintf("%s must be %s, got %s", [field, with_article(want), got]) |
		some field, want in server_schema
		got := kind(server, field)
		got != want
	}
	values := {sprintf("suffrage must be \"voter\" or \"nonvoter\", got %q", [server.suffrage]) |
		is_string(server.suffrage)
		not server.suffrage in suffrages
	}
	problems := (types | values) | canonical_element_problems(server)
}

# --- Leader ------------------------------------------------------------------

# METADATA
# title: Has leader
# description: The topology names a leader.
has_leader if {
	is_string(input.topology.leader.id)
	input.topology.leader.id != ""
}

# METADATA
# title: No leader
# description: There is no leader to make the change; the cluster is
#   electing or has lost quorum.
deny contains {"code": "NO_LEADER", "message": msg} if {
	collected
	input.topology.leader.id == ""
	msg := sprintf(
		"cannot %s %v: the cluster has no leader (an election is in progress or quorum is lost); retry once a leader is elected",
		[wording.object, candidate_id],
	)
}

# --- Duplicates --------------------------------------------------------------

# METADATA
# title: Candidate is new
# description: Neither the candidate's id nor its raft address is used by the
#   leader or any of the (well formed) servers, neither as spelled nor
#   through an endpoint both addresses resolve to, which requires that
#   every address compared resolved.
candidate_is_new if {
	candidate_valid
	input.topology.leader.id != input.candidate.id
	input.topology.leader.address != input.candidate.raft_addr
	servers_well_formed
	not input.candidate.id in server_ids
	not input.candidate.raft_addr in server_addresses
	addresses_resolved
	not shares_an_endpoint
}

server_ids := {server.id | some server in input.topology.servers}

server_addresses := {server.address | some server in input.topology.servers}

# All members, the servers and the leader: id, address, the canonical
# addresses it resolved to, and why it did not resolve.
members contains m if {
	some server in input.topology.servers
	m := as_member(server)
}

members contains as_member(input.topology.leader)

as_member(obj) := {"id": obj.id, "address": obj.address, "canonical": canonical(obj), "error": error_of(obj)} if {
	is_object(obj)
}

canonical(obj) := {a |
	some a in obj.canonical_addresses
	is_string(a)
}

error_of(obj) := e if {
	e := obj.address_error
	is_string(e)
	e != ""
} else := "no error reported"

# The candidate's canonical addresses; empty when it did not resolve.
candidate_canonical := canonical(input.topology.candidate_address)

# The endpoints member's address and the candidate's both resolve to.
shared_endpoints(member) := member.canonical & candidate_canonical

# METADATA
# title: Collides
# description: member's raft address is the candidate's, spelled the same
#   or resolving to an endpoint the candidate's resolves to.
collides(member) if member.address == input.candidate.raft_addr

collides(member) if count(shared_endpoints(member)) > 0

shares_an_endpoint if {
	some member in members
	count(shared_endpoints(member)) > 0
}

# The members the candidate's address is compared with: admitting, all;
# promoting, all but its own entry.
compared_members contains member if {
	admit_phase
	some member in members
}

compared_members contains member if {
	promote_phase
	some member in members
	member.id != input.candidate.id
}

# Compared members with an address that resolved to nothing. An empty
# address (the leader's, when there is none) has nothing to resolve.
unresolved_members contains member if {
	some member in compared_members
	member.address != ""
	count(member.canonical) == 0
}

# METADATA
# title: Addresses resolved
# description: The candidate's raft address, and every member's it is
#   compared with, resolved to at least one canonical address. Without
#   that, no comparison can prove them distinct.
addresses_resolved if {
	count(candidate_canonical) > 0
	count(unresolved_members) == 0
}

# METADATA
# title: Address unresolved
# description: Adding or promoting, the candidate's raft address did not
#   resolve, so it cannot be proven distinct from every member's. Not
#   permanent, as a name can be fixed and DNS can recover.
deny contains {"code": "ADDRESS_UNRESOLVED", "message": msg} if {
	collected
	not remove_phase
	candidate_valid
	candidate_address_well_formed
	count(candidate_canonical) == 0
	msg := sprintf(
		"candidate %v: its raft address %q did not resolve (%s); the stage compares the endpoints addresses resolve to and cannot prove this one is no member's: fix the address or its name in DNS, then retry",
		[candidate_id, input.candidate.raft_addr, error_of(input.topology.candidate_address)],
	)
}

# METADATA
# title: Member address unresolved
# description: Adding or promoting, the raft address of a member the
#   candidate is compared with did not resolve, so the candidate's cannot
#   be proven distinct from it. Not permanent, as DNS can recover, or the
#   member can be removed (a removal needs no address resolved).
deny contains {"code": "ADDRESS_UNRESOLVED", "message": msg} if {
	collected
	candidate_valid
	servers_well_formed
	some member in unresolved_members
	msg := sprintf(
		"candidate %v: member %v's raft address %q did not resolve (%s); the stage cannot prove the candidate's address %q is not %v's: fix the member's name in DNS, or remove %v, then retry",
		[candidate_id, member.id, member.address, member.error, input.candidate.raft_addr, member.id, member.id],
	)
}

# METADATA
# title: Duplicate id
# description: Admitting, a member already uses the candidate's id.
deny contains {"code": "DUPLICATE_ID", "message": msg} if {
	collected
	admit_phase
	not candidate_is_new
	some member in members
	member.id == input.candidate.id
	msg := sprintf(
		"candidate id %q is already used by the member at %v; choose a unique id, or remove the old member first",
		[input.candidate.id, member.address],
	)
}

# METADATA
# title: Duplicate address
# description: A member other than the candidate already uses its raft
#   address, as spelled or through an endpoint both resolve to. The message
#   names the member and its address.
deny contains {"code": "DUPLICATE_ADDRESS", "message": msg} if {
	collected
	some member in address_holders
	msg := sprintf(
		"candidate %v: %s; give the candidate its own address, or remove the old member first",
		[candidate_id, collision(member)],
	)
}

collision(member) := sprintf("raft address %q is already used by member %v", [input.candidate.raft_addr, member.id]) if {
	member.address == input.candidate.raft_addr
} else := sprintf(
	"raft address %q is %v's raft address %v: both resolve to %s",
	[input.candidate.raft_addr, member.id, member.address, concat(", ", sort(shared_endpoints(member)))],
)

# Members at the candidate's raft address: admitting, any member;
# promoting, any but the candidate's own entry.
address_holders contains member if {
	admit_phase
	not candidate_is_new
	some member in members
	collides(member)
}

address_holders contains member if {
	promote_phase
	some member in others_at_address
}

others_at_address contains member if {
	some member in members
	member.id != input.candidate.id
	collides(member)
}

# --- Staging -----------------------------------------------------------------

# METADATA
# title: Staging open
# description: Fewer non-voters than max_staged are in stage.
staging_open if {
	staged_well_formed
	max_staged_well_formed
	count(input.topology.staged) < input.topology.max_staged
}

# METADATA
# title: Staging full
# description: Admitting a non-voter, as many non-voters as max_staged
#   allows are already in stage. Each promotion or removal frees a slot; a
#   direct voter add takes none.
deny contains {"code": "STAGING_FULL", "message": msg} if {
	collected
	adds_nonvoter
	staged_well_formed
	max_staged_well_formed
	not staging_open
	msg := sprintf(
		"cannot admit candidate %v: %d non-voters are in stage (%s), as many as max_staged %v allows; retry once one is promoted or removed",
		[candidate_id, count(input.topology.staged), concat(", ", sort(input.topology.staged)), input.topology.max_staged],
	)
}

# The configuration's entries with the candidate's id: raft keys servers
# by id, so promoting, this is the staged non-voter, once.
candidate_entries := [server |
	some server in input.topology.servers
	server.id == input.candidate.id
]

listed_as_staged if {
	staged_well_formed
	input.candidate.id in input.topology.staged
}

# METADATA
# title: Candidate staged
# description: Promoting, the candidate is in the configuration once, as a
#   non-voter at its raft address, is not the leader, and is listed in staged.
candidate_staged if {
	candidate_valid
	servers_well_formed
	count(candidate_entries) == 1
	some entry in candidate_entries
	entry.suffrage == "nonvoter"
	entry.address == input.candidate.raft_addr
	input.topology.leader.id != input.candidate.id
	listed_as_staged
}

# METADATA
# title: Candidate healthy
# description: Promoting, the leader sees the candidate healthy.
candidate_healthy if {
	some entry in candidate_entries
	healthy(entry)
}

# METADATA
# title: Address unique
# description: Promoting, no member but the candidate uses its raft
#   address, as spelled or resolved, and every address compared resolved.
address_unique if {
	candidate_valid
	servers_well_formed
	is_string(input.topology.leader.id)
	is_string(input.topology.leader.address)
	addresses_resolved
	count(others_at_address) == 0
}

not_staged contains "it is not in the configuration: it was removed, or never admitted; admit it again in stage" if {
	count(candidate_entries) == 0
}

not_staged contains "it is already a voter: there is nothing to promote" if {
	some entry in candidate_entries
	entry.suffrage == "voter"
}

not_staged contains "it is the leader, so already a voter: there is nothing to promote" if {
	input.topology.leader.id == input.candidate.id
}

not_staged contains msg if {
	some entry in candidate_entries
	entry.address != input.candidate.raft_addr
	msg := sprintf(
		"its id is in the configuration at %v, not at its raft_addr %v: promote the node that was staged, at the address it was admitted with",
		[entry.address, input.candidate.raft_addr],
	)
}

# The stage record is committed after the non-voter is added, so a
# promotion right after the admission can see it missing for a moment.
not_staged contains msg if {
	count(candidate_entries) == 1
	some entry in candidate_entries
	entry.suffrage == "nonvoter"
	entry.address == input.candidate.raft_addr
	staged_well_formed
	not listed_as_staged
	msg := sprintf(
		"it is a non-voter but not in topology.staged %v: it was not admitted in stage, or its stage is not recorded yet; retry shortly, or remove it and admit it in stage",
		[input.topology.staged],
	)
}

# METADATA
# title: Candidate not staged
# description: Promoting, the candidate is not the staged non-voter it
#   must be. Not permanent, as a just-admitted candidate's stage record
#   can trail its configuration entry; the caller's own deadline bounds
#   the retries.
deny contains {"code": "CANDIDATE_NOT_STAGED", "message": msg} if {
	collected
	promote_phase
	candidate_valid
	is_array(input.topology.servers)
	count(not_staged) > 0
	msg := sprintf("cannot promote candidate %v: %s", [candidate_id, concat("; ", sort(not_staged))])
}

# METADATA
# title: Duplicate id when promoting
# description: Promoting, more than one member of the configuration has the
#   candidate's id; only the staged non-voter may.
deny contains {"code": "DUPLICATE_ID", "message": msg} if {
	collected
	promote_phase
	count(candidate_entries) > 1
	msg := sprintf(
		"candidate id %q is used by %d members of the configuration (at %v); remove all but the staged non-voter",
		[input.candidate.id, count(candidate_entries), [entry.address | some entry in candidate_entries]],
	)
}

# METADATA
# title: Candidate unhealthy
# description: Promoting, the leader does not see the candidate healthy.
#   raft-autopilot refuses to promote an unhealthy server, since as a voter
#   it would count against the quorum from the start. Not permanent, as the
#   candidate may recover; the caller's deadline bounds the retries.
deny contains {"code": "CANDIDATE_UNHEALTHY", "message": msg} if {
	collected
	promote_phase
	some entry in candidate_entries
	not healthy(entry)
	msg := sprintf(
		"cannot promote candidate %v: the leader does not see it healthy (its topology.servers entry has healthy %s); a voter that is down counts against the quorum from the moment it is promoted, so check the node, then retry once the leader sees it healthy",
		[candidate_id, json.marshal(object.get(entry, "healthy", null))],
	)
}

# --- Removal and demotion ----------------------------------------------------

# METADATA
# title: Candidate is a member
# description: Removing or demoting, the candidate's id is in the
#   configuration. raft finds the member to change by id, and so does the
#   stage.
candidate_is_member if {
	candidate_valid
	servers_well_formed
	count(candidate_entries) > 0
}

# METADATA
# title: Candidate votes
# description: The candidate is a voter in the configuration today.
candidate_votes if {
	some entry in candidate_entries
	entry.suffrage == "voter"
}

# METADATA
# title: Not the leader
# description: The candidate is not the leader, which makes the change and
#   must stay to commit it.
not_the_leader if {
	candidate_valid
	is_string(input.topology.leader.id)
	input.topology.leader.id != input.candidate.id
}

# METADATA
# title: Last voter
# description: The candidate is the only voter. Without its vote the
#   configuration has none, and can never commit again.
last_voter if {
	candidate_votes
	count(voters) == 1
}

# METADATA
# title: Not a member
# description: Removing or demoting, the candidate's id is not in the
#   configuration. Permanent, as it was removed already or the id is wrong.
deny contains {"code": "NOT_A_MEMBER", "message": msg} if {
	collected
	remove_phase
	candidate_valid
	servers_well_formed
	count(candidate_entries) == 0
	msg := sprintf(
		"cannot %s %v: it is not in the configuration (members: %s); it was removed already, or the id is wrong: check the id",
		[wording.object, candidate_id, member_list],
	)
}

# METADATA
# title: Removes the leader
# description: Removing or demoting, the candidate is the leader. The
#   leader makes the change; it hands over first. Permanent for this
#   request, which must go to the new leader.
deny contains {"code": "REMOVES_LEADER", "message": msg} if {
	collected
	remove_phase
	candidate_valid
	input.topology.leader.id == input.candidate.id
	msg := sprintf(
		"cannot %s %v: it is the leader; transfer leadership first (raft's LeadershipTransfer), then ask the new leader",
		[wording.object, candidate_id],
	)
}

# METADATA
# title: Last voter denied
# description: Removing or demoting the only voter would leave a
#   configuration that can never commit again. Permanent.
deny contains {"code": "LAST_VOTER", "message": msg} if {
	collected
	remove_phase
	last_voter
	msg := sprintf(
		"cannot %s %v: it is the only voter, and a configuration without voters can never commit again; add another voter first",
		[wording.object, candidate_id],
	)
}

# METADATA
# title: Not a voter
# description: Demoting, the candidate is a non-voter already, with no
#   vote to take away. Permanent.
deny contains {"code": "NOT_A_VOTER", "message": msg} if {
	collected
	demotes_voter
	some entry in candidate_entries
	entry.suffrage == "nonvoter"
	msg := sprintf(
		"cannot demote member %v: it is a non-voter already, so there is no vote to take away; to take it out of the configuration, ask for the change \"remove\"",
		[candidate_id],
	)
}

# --- Tombstones --------------------------------------------------------------

# METADATA
# title: Not tombstoned
# description: The candidate's id is not one of a removed member; proven from
#   a well-formed tombstones list, never from its absence.
not_tombstoned if {
	tombstones_well_formed
	every id in input.topology.tombstones {
		id != input.candidate.id
	}
}

# METADATA
# title: Tombstones ok
# description: Adding or promoting, the candidate's id is not tombstoned.
#   Removing or demoting, tombstones do not matter. They keep removed ids
#   out, and taking a member out is what they ask for.
tombstones_ok if {
	not remove_phase
	not_tombstoned
}

tombstones_ok if remove_phase

# METADATA
# title: Id tombstoned
# description: A removed member's id is refused until an operator clears its
#   tombstone, so a stale node cannot come back under its old name.
deny contains {"code": "ID_TOMBSTONED", "message": msg} if {
	collected
	not remove_phase
	some id in input.topology.tombstones
	id == input.candidate.id
	msg := sprintf(
		"candidate id %q belongs to a removed member; use a new id, or clear the tombstone (admitd clear-tombstone --id %s) if reusing it is intended",
		[id, id],
	)
}

# --- Quorum ------------------------------------------------------------------

# Today's voters; non-voters take no part in quorum.
voters := [server |
	some server in input.topology.servers
	server.suffrage == "voter"
]

healthy_voters := [voter | some voter in voters; voter.healthy == true]

healthy(server) if server.healthy == true

unhealthy_voters := [sprintf("%v", [object.get(voter, "id", "<no id>")]) |
	some voter in voters
	not healthy(voter)
]

# METADATA
# title: Adds a vote
# description: The change gives the candidate a vote (add_voter, promote,
#   or a change not stated, judged as the stricter voter add). Removing and
#   demoting never do.
adds_vote if {
	not adds_nonvoter
	not remove_phase
}

# Voters once the change is made: one more when it adds a vote; as many as
# today for a non-voter, which is not counted. And the quorum they need.
enlarged := count(voters) + 1 if {
	adds_vote
} else := count(voters)

quorum := floor(enlarged / 2) + 1

# METADATA
# title: Quorum safe
# description: After the change, the healthy voters still make a quorum
#   (or a single healthy voter grows to two, which etcd allows).
quorum_safe if {
	not remove_phase
	is_array(input.topology.servers)
	count(healthy_voters) >= quorum
}

quorum_safe if {
	not remove_phase
	is_array(input.topology.servers)
	count(voters) == 1
	count(healthy_voters) == 1
}

quorum_safe if {
	remove_phase
	removal_quorum_safe
}

# METADATA
# title: Quorum unsafe
# description: Adding a voter now could leave the cluster without a healthy
#   quorum; adding a non-voter now could not be committed at all.
deny contains {"code": "QUORUM_UNSAFE", "message": msg} if {
	collected
	not remove_phase
	is_array(input.topology.servers)
	not quorum_safe
	msg := sprintf(
		"%s, but only %d voters are healthy (%s); bring the unhealthy voters back or remove them before %s",
		[quorum_text, count(healthy_voters), unhealthy_summary, wording.then],
	)
}

quorum_text := sprintf("adding non-voter %v is a configuration change the %d voters must commit with quorum %d", [candidate_id, enlarged, quorum]) if {
	adds_nonvoter
} else := sprintf("%s %v makes %d voters needing quorum %d", [wording.verb, candidate_id, enlarged, quorum])

unhealthy_summary := sprintf("%s unhealthy", [concat(", ", sort(unhealthy_voters))]) if {
	count(unhealthy_voters) > 0
} else := "the configuration has no voters"

# Removing or demoting a voter (etcd IsReadyToRemoveVotingMember): the
# n voters become n-1, which need floor((n-1)/2)+1 for quorum, and only the
# healthy voters other than the candidate count.
voters_after := count(voters) - 1

removal_quorum := floor(voters_after / 2) + 1

healthy_after := [voter |
	some voter in healthy_voters
	voter.id != input.candidate.id
]

# METADATA
# title: Removal quorum safe
# description: Removing or demoting a voter other than the last, the
#   healthy voters that remain make the quorum of the voters that remain.
#   A non-voter takes no part in quorum, so removing it is always safe.
removal_quorum_safe if {
	candidate_votes
	not last_voter
	count(healthy_after) >= removal_quorum
}

removal_quorum_safe if {
	candidate_is_member
	not candidate_votes
}

# METADATA
# title: Quorum unsafe when removing
# description: Taking a voter's vote away now would leave fewer healthy
#   voters than the remaining voters' quorum. Not permanent, as the
#   unhealthy voters may come back.
deny contains {"code": "QUORUM_UNSAFE", "message": msg} if {
	collected
	remove_phase
	candidate_votes
	not last_voter
	count(healthy_after) < removal_quorum
	msg := sprintf(
		"cannot %s voter %v: %d healthy voters would remain of %d, a quorum of %d is %d (%s); %s",
		[wording.action, candidate_id, count(healthy_after), voters_after, voters_after, removal_quorum, unhealthy_after_summary, removal_advice],
	)
}

unhealthy_after := [id |
	some id in unhealthy_voters
	id != candidate_id
]

# Never empty when the removal is unsafe: were every other voter healthy,
# the n-1 of them would make their own quorum.
unhealthy_after_summary := sprintf("%s unhealthy", [concat(", ", sort(unhealthy_after))])

# A healthy candidate's removal waits for the others; an unhealthy one's
# only for the others to come back, as the healthy voters have no quorum
# even today.
removal_advice := sprintf("bring the unhealthy voters back, or %s an unhealthy voter first, then retry", [wording.action]) if {
	some entry in candidate_entries
	healthy(entry)
} else := "bring the unhealthy voters back, then retry"

# METADATA
# title: Even voters
# description: An even number of voters tolerates no more failures than one
#   fewer, and makes split votes likelier. A warning only, for a change that
#   adds a vote; a non-voter add leaves the voters as they are.
warn contains {"code": "EVEN_VOTERS", "message": msg} if {
	collected
	is_array(input.topology.servers)
	adds_vote
	enlarged % 2 == 0
	msg := sprintf(
		"%s %v makes %d voters, an even count: they survive the loss of %d, no more than %d voters would; plan to add one more voter",
		[wording.verb, candidate_id, enlarged, enlarged - quorum, enlarged - 1],
	)
}

# --- Helpers: values for messages, never undefined ---------------------------

# The change the stage decides, in words. In the remove phase a change that
# is neither "remove" nor "demote" is judged, and worded, as either.
wording := {"verb": "promoting", "then": "promoting it", "object": "add candidate", "action": "promote"} if {
	promote_phase
} else := {"verb": "removing", "then": "removing it", "object": "remove member", "action": "remove"} if {
	removes_member
} else := {"verb": "demoting", "then": "demoting it", "object": "demote member", "action": "demote"} if {
	demotes_voter
} else := {"verb": "changing", "then": "changing it", "object": "change member", "action": "remove or demote"} if {
	remove_phase
} else := {"verb": "adding", "then": "adding a non-voter", "object": "add candidate", "action": "add"} if {
	adds_nonvoter
} else := {"verb": "adding", "then": "adding a voter", "object": "add candidate", "action": "add"}

# The members' ids for a message; any value is spelled out, so a malformed
# entry cannot make the builtin fail.
member_list := concat(", ", sort({sprintf("%v", [id]) | some id in server_ids})) if {
	count(server_ids) > 0
} else := "none"

change_json := v if {
	v := json.marshal(input.change)
} else := "missing"

max_staged_json := v if {
	v := json.marshal(input.topology.max_staged)
} else := "missing"

candidate_id := v if {
	v := input.candidate.id
	is_string(v)
} else := "<no id>"

candidate_json := v if {
	v := json.marshal(input.candidate)
} else := "nothing"

collector_error := v if {
	v := input.topology.error
	is_string(v)
	v != ""
} else := "no error reported"

# kind is the JSON type of obj[key], or "missing" when obj is an object
# without key. The else avoids building object.keys(obj) on every call.
kind(obj, key) := t if {
	t := type_name(obj[key])
} else := "missing" if {
	is_object(obj)
}
