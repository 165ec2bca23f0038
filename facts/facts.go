// Package facts defines the admitd.facts/v1 document that every policy stage
// reads as input, and the collectors that fill it.
package facts

import (
	"time"
)

// Schema is the only schema value this version accepts.
const Schema = "admitd.facts/v1"

// Document is the facts document. Sections are pointers so that a missing
// section stays missing: policies must prove facts, never infer them.
type Document struct {
	Schema string `json:"schema"`
	// Phase is PhaseAdmit (join as a member) or PhasePromote (a staged
	// non-voter becomes a voter); it picks the pipeline. Empty means admit.
	Phase Phase `json:"phase,omitempty"`
	// Change names the membership change asked for: ChangeAddVoter or
	// ChangeAddNonvoter in the admit phase, ChangePromote in the promote
	// phase. Empty in documents from before it existed.
	Change       string        `json:"change,omitempty"`
	CollectedAt  time.Time     `json:"collected_at"`
	Candidate    Candidate     `json:"candidate"`
	Reachability *Reachability `json:"reachability,omitempty"`
	InitState    *InitState    `json:"init_state,omitempty"`
	CatchUp      *CatchUp      `json:"catch_up,omitempty"`
	Topology     *Topology     `json:"topology,omitempty"`
	// Site carries facts supplied by the operator for site stages
	// (for example a maintenance window); admitd never interprets it.
	Site map[string]any `json:"site,omitempty"`
}

// Candidate names the node asking to become a voter. APIURL is empty for
// a candidate that runs nothing but raft: its facts then come from its
// raft address alone.
type Candidate struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIURL   string `json:"api_url"`
}

// Section is the common head of every collected section.
type Section struct {
	Collected  bool    `json:"collected"`
	Error      string  `json:"error"`
	DurationMS float64 `json:"duration_ms"`
}

// Reachability says whether the candidate answers on its raft and API addresses.
type Reachability struct {
	Section
	Raft RaftProbe `json:"raft"`
	// RaftRPC is the raft server's own answer at raft_addr.
	RaftRPC RaftRPC  `json:"raft_rpc"`
	API     APIProbe `json:"api"`
}

// RaftRPC is the answer of the raft server at the candidate's raft address
// to a side-effect-free pre-vote: who answered, in its RPC header. It is
// not cryptographic: whoever holds the address can answer as anyone.
type RaftRPC struct {
	OK    bool    `json:"ok"` // a decoded raft answer came back
	ID    string  `json:"id"` // the server id that answered
	RTTMS float64 `json:"rtt_ms"`
	Error string  `json:"error"`
}

// RaftProbe is the result of TCP handshakes to the candidate's raft address.
type RaftProbe struct {
	OK        bool    `json:"ok"`
	Attempts  int     `json:"attempts"`
	Successes int     `json:"successes"`
	RTTMS     float64 `json:"rtt_ms"`
	Error     string  `json:"error"`
}

// APIProbe is the result of a GET of the candidate's /v1/state.
type APIProbe struct {
	// Skipped: the candidate has no api_url, so there was nothing to call.
	Skipped bool    `json:"skipped"`
	OK      bool    `json:"ok"`
	Status  int     `json:"status"`
	RTTMS   float64 `json:"rtt_ms"`
	Error   string  `json:"error"`
	TLS     TLSInfo `json:"tls"`
}

// TLSInfo is the identity the candidate's API proved over TLS. Enabled
// means this node runs with TLS, so the candidate had to serve HTTPS;
// Verified means its certificate chained to a trusted CA, and URIs and
// DNSNames are that certificate's SANs.
type TLSInfo struct {
	Enabled  bool     `json:"enabled"`
	Verified bool     `json:"verified"`
	URIs     []string `json:"uris"`
	DNSNames []string `json:"dns_names"`
	Error    string   `json:"error"`
}

// InitState is what the candidate's raft server and, when it has one, its
// API say about its raft state. The top-level fields are the API's answer
// when "api" is among Sources, else what raft's answer implies.
type InitState struct {
	Section
	// Sources lists the signals used: SourceRaft always, SourceAPI when
	// the candidate has an api_url. Every source listed answered.
	Sources     []string `json:"sources"`
	Raft        RaftInit `json:"raft"`
	NodeID      string   `json:"node_id"`
	Initialized bool     `json:"initialized"`
	ClusterID   string   `json:"cluster_id"`
	LastIndex   uint64   `json:"last_index"`
	LastTerm    uint64   `json:"last_term"`
	Version     string   `json:"version"`
}

// RaftInit is the raft server's own answer about its state: a term-0
// pre-vote, then, only when that showed a term above 0, a term-0
// AppendEntries, which such a server refuses with its last log index.
type RaftInit struct {
	ID             string `json:"id"`
	Term           uint64 `json:"term"`
	Granted        bool   `json:"granted"` // a fresh, never-bootstrapped server grants it
	LastIndex      uint64 `json:"last_index"`
	LastIndexKnown bool   `json:"last_index_known"`
}

// Topology is the cluster configuration as the leader sees it.
type Topology struct {
	Section
	ClusterID   string   `json:"cluster_id"`
	ConfigIndex uint64   `json:"config_index"`
	Leader      Leader   `json:"leader"`
	Servers     []Server `json:"servers"`
	// Tombstones are ids of removed members, refused until an operator
	// clears them.
	Tombstones []string `json:"tombstones"`
	// Staged are ids of non-voters admitted in stage and not yet promoted;
	// MaxStaged is how many may be in stage at once.
	Staged    []string `json:"staged"`
	MaxStaged int      `json:"max_staged"`
	// CandidateAddress is the candidate's raft_addr resolved at collect
	// time, for the duplicate-address rule. Collected for an admission
	// or a promotion; absent in removal facts and /v1/cluster, which
	// have no candidate address to compare.
	CandidateAddress *CandidateAddress `json:"candidate_address,omitempty"`
}

// CandidateAddress is the candidate's raft address and what it resolved to.
type CandidateAddress struct {
	// Address is the address resolved: the candidate's raft_addr as given,
	// which the topology stage checks.
	Address string `json:"address"`
	Resolution
}

// Resolution is a raft address resolved by the leader at collect time,
// under the topology section's deadline: CanonicalAddresses are the
// endpoints it resolves to, from CanonicalAddresses (an IP literal as
// given, a name through the system resolver, all of its addresses),
// sorted, without duplicates; empty when the address did not resolve, or
// is empty. AddressError is why it did not resolve; empty when it did, or
// is empty. Two addresses that share an endpoint reach the same server.
type Resolution struct {
	CanonicalAddresses []string `json:"canonical_addresses"`
	AddressError       string   `json:"address_error"`
}

// CatchUp is how far a staged non-voter has caught up with the leader, for
// the promote phase.
type CatchUp struct {
	Section
	LeaderLastIndex uint64 `json:"leader_last_index"`
	LeaderTerm      uint64 `json:"leader_term"`
	LastIndex       uint64 `json:"last_index"`
	LastTerm        uint64 `json:"last_term"`
	// Lag is leader_last_index - last_index (0 when the candidate is ahead).
	Lag uint64 `json:"lag"`
	// LastContactMS is how long ago the candidate last heard from the
	// leader, as it reports it; -1 means never.
	LastContactMS float64 `json:"last_contact_ms"`
	// HealthyForMS is how long the leader has seen the candidate healthy
	// (answering as itself, in this cluster and term) without a break.
	HealthyForMS float64 `json:"healthy_for_ms"`
	// StagedForMS is how long ago the candidate was added as a non-voter.
	StagedForMS float64 `json:"staged_for_ms"`
	// Sources lists where the candidate's side came from: SourceAPI (its
	// /v1/state) or SourceRaft (the leader's raft probe of it).
	Sources []string `json:"sources"`
}

// Leader names the current leader.
type Leader struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Resolution
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Resolution
	Suffrage Suffrage `json:"suffrage"`
	// Healthy: it answers as itself, in this cluster and the leader's
	// term, and keeps up: at most CollectConfig.MaxMemberLag entries
	// behind the leader's last index.
	Healthy bool `json:"healthy"`
	// LastIndex is the member's last log index as it answered (0 when it
	// did not); Lag is how far that is behind the leader's.
	LastIndex uint64 `json:"last_index"`
	Lag       uint64 `json:"lag"`
	// PolicyRevision is the revision the member reports, when known.
	PolicyRevision string `json:"policy_revision,omitempty"`
}

// Phase is which decision a facts document is for, and so which pipeline
// judges it: PhaseAdmit, PhasePromote or PhaseRemove, and nothing else
// (Decode refuses any other; "" in a document means admit). In JSON it is
// the plain string, as the schema and the policies spell it.
type Phase string

// Phases.
const (
	PhaseAdmit   Phase = "admit"
	PhasePromote Phase = "promote"
	// PhaseRemove judges a removal or a demotion of a member.
	PhaseRemove Phase = "remove"
)

// Change kinds.
const (
	ChangeAddVoter    = "add_voter"
	ChangeAddNonvoter = "add_nonvoter"
	ChangePromote     = "promote"
	ChangeRemove      = "remove"
	ChangeDemote      = "demote"
)

// Fact sources.
const (
	SourceRaft = "raft"
	SourceAPI  = "api"
)

// Suffrage is a member's vote in the raft configuration, as the schema
// spells it: Voter or Nonvoter ("" where a value says "no member"). raft's
// own ServerSuffrage is converted to it in one place, raftglue; raft's
// Staging, which does not vote, is a Nonvoter. In JSON it is the plain
// string.
type Suffrage string

// Suffrage values.
const (
	Voter    Suffrage = "voter"
	Nonvoter Suffrage = "nonvoter"
)

// Ms converts a duration to milliseconds, as the schema reports them.
func Ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
