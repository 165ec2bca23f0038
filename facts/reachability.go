package facts

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// collectReachability probes the raft address while the shared state fetch
// runs, then reports both. A failed probe is a fact (collected, not ok);
// only the section's own deadline or cancellation makes it uncollected.
func collectReachability(ctx context.Context, cfg CollectConfig, cand Candidate, state *stateFetch, rf *raftFetch) (*Reachability, error) {
	pctx, cancel := probeContext(ctx)
	defer cancel()
	tcp := probeRaft(pctx, cand.RaftAddr, cfg.RaftDialAttempts, cfg.DialTimeout)
	res, err := state.wait(ctx)
	if err != nil {
		return nil, err
	}
	answer, err := rf.wait(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	api := res.apiProbe()
	api.TLS = res.tlsInfo(cfg.TLSRequired)
	return &Reachability{Raft: tcp, RaftRPC: answer.rpcFact(), API: api}, nil
}

// probeRaft makes attempts TCP handshakes at once, closing each as soon as
// it completes: concurrent, so a reachable candidate costs one round trip
// rather than attempts of them, and each one fresh, so a dead listener is
// never hidden behind a reused connection. OK means at least one succeeded;
// the counts are recorded so a policy can demand successes == attempts.
// None starts once ctx has ended, and Attempts then says how many were made.
func probeRaft(ctx context.Context, addr string, attempts int, dialTimeout time.Duration) RaftProbe {
	var p RaftProbe
	if err := ValidateHostPort(addr); err != nil {
		p.Error = "raft_addr: " + err.Error()
		return p
	}
	d := net.Dialer{Timeout: dialTimeout}
	rtts := make([]time.Duration, attempts)
	errs := make([]error, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts && ctx.Err() == nil; i++ {
		p.Attempts++
		wg.Go(func() {
			start := time.Now()
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs[i] = err
				return
			}
			rtts[i] = time.Since(start)
			conn.Close()
		})
	}
	wg.Wait()
	var ok []time.Duration
	for i := range p.Attempts {
		if errs[i] != nil {
			p.Error = errs[i].Error()
			continue
		}
		ok = append(ok, rtts[i])
	}
	p.Successes = len(ok)
	p.OK = p.Successes >= 1
	p.RTTMS = Ms(median(ok))
	return p
}

// RaftAnswers makes one TCP handshake to addr under cfg's dial timeout, the
// same probe as the reachability collector's, for a last check right
// before a membership change.
func RaftAnswers(ctx context.Context, cfg CollectConfig, addr string) error {
	cfg = cfg.withDefaults()
	if p := probeRaft(ctx, addr, 1, cfg.DialTimeout); !p.OK {
		return errors.New(p.Error)
	}
	return nil
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
