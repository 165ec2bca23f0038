package server

import "time"

// Raft timeouts of every in-process test node in this directory (package
// server, and package server_test through these exported names).
//
// They are longer than a LAN test needs on an idle machine on purpose. The
// whole suite runs packages side by side under -race, and on a loaded
// 2-core machine a node's goroutines can go unscheduled for well over the
// 100 ms (lease 50 ms) these nodes had: a leader then missed its lease, a
// follower timed out, and whatever the test asked next was answered
// NO_LEADER. Leadership now survives a stall of half a second. raft
// requires LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout; the
// price is a bootstrap's first election, which waits one to two
// HeartbeatTimeouts.
const (
	TestHeartbeatTimeout   = 500 * time.Millisecond
	TestElectionTimeout    = 500 * time.Millisecond
	TestLeaderLeaseTimeout = 500 * time.Millisecond
	TestCommitTimeout      = 5 * time.Millisecond
)
