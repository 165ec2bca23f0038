package facts

import (
	"context"
	"net"
	"slices"
	"time"
)

// collectReachability probes the raft address while the shared state fetch
// runs, then reports both. A failed probe is a fact (collected, not ok);
// only the section's own deadline or cancellation makes it uncollected.
func collectReachability(ctx context.Context, cfg CollectConfig, raftAddr string, state *stateFetch) (*Reachability, error) {
	pctx, cancel := probeContext(ctx)
	defer cancel()
	raft := probeRaft(pctx, raftAddr, cfg.RaftDialAttempts, cfg.DialTimeout)
	res, err := state.wait(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Reachability{Raft: raft, API: res.apiProbe()}, nil
}

// probeRaft makes up to attempts sequential TCP handshakes, closing each at
// once. OK means at least one succeeded; the counts are recorded so a policy
// can demand successes == attempts. Attempts stop early when ctx ends, and
// Attempts then says how many were made.
func probeRaft(ctx context.Context, addr string, attempts int, dialTimeout time.Duration) RaftProbe {
	var p RaftProbe
	if err := ValidateHostPort(addr); err != nil {
		p.Error = "raft_addr: " + err.Error()
		return p
	}
	d := net.Dialer{Timeout: dialTimeout}
	var rtts []time.Duration
	for i := 0; i < attempts && ctx.Err() == nil; i++ {
		p.Attempts++
		start := time.Now()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			p.Error = err.Error()
			continue
		}
		rtts = append(rtts, time.Since(start))
		conn.Close()
	}
	p.Successes = len(rtts)
	p.OK = p.Successes >= 1
	p.RTTMS = ms(median(rtts))
	return p
}

// median of the successful handshakes: one slow SYN does not skew it.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 0 {
		return (s[mid-1] + s[mid]) / 2
	}
	return s[mid]
}
