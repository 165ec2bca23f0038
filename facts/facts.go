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
	Phase        string        `json:"phase,omitempty"`
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

// Candidate names the node asking to become a voter.
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
	API  APIProbe  `json:"api"`
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
	OK     bool    `json:"ok"`
	Status int     `json:"status"`
	RTTMS  float64 `json:"rtt_ms"`
	Error  string  `json:"error"`
	TLS    TLSInfo `json:"tls"`
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

// InitState is what the candidate reports about its own raft state.
type InitState struct {
	Section
	NodeID      string `json:"node_id"`
	Initialized bool   `json:"initialized"`
	ClusterID   string `json:"cluster_id"`
	LastIndex   uint64 `json:"last_index"`
	LastTerm    uint64 `json:"last_term"`
	Version     string `json:"version"`
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
}

// Leader names the current leader.
type Leader struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// Server is one member of the raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Healthy  bool   `json:"healthy"`
	// PolicyRevision is the revision the member reports, when known.
	PolicyRevision string `json:"policy_revision,omitempty"`
}

// Phases.
const (
	PhaseAdmit   = "admit"
	PhasePromote = "promote"
)

// Suffrage values.
const (
	Voter    = "voter"
	Nonvoter = "nonvoter"
)

// Ms converts a duration to milliseconds, as the schema reports them.
func Ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
