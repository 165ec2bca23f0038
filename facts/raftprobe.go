package facts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// RaftAnswer is what the raft server at an address said to the probe.
type RaftAnswer struct {
	Answered       bool    // a decoded raft answer came back
	ID             string  // server id in the answer's RPC header ("" if the peer sent none)
	Term           uint64  // its current term
	LastIndex      uint64  // its last log index, when known
	LastIndexKnown bool    // true once an AppendEntries answer reported LastLog
	Granted        bool    // it granted the term-0 pre-vote (a fresh, never-bootstrapped node does)
	RTTMS          float64 // round trip of the pre-vote, milliseconds
	Error          string  // transport error, timeout or undecodable answer; Answered is then false
}

const (
	// rpcProbeDefaultWait bounds a probe whose ctx has no deadline.
	rpcProbeDefaultWait = time.Second
	// rpcProbeMaxWait caps a probe whose ctx allows more: two round trips
	// to a live raft server take milliseconds.
	rpcProbeMaxWait = 10 * time.Second
	// rpcProbeSelfAddr is the address the probe gives as its own. Nothing
	// listens on it; a raft server only decodes it (raft.go:1775) and
	// compares it with its leader's address (raft.go:1786).
	rpcProbeSelfAddr = "admitd-probe.invalid:0"
)

// ProbeRaftRPC asks addr, under ctx's deadline, with the probe's own dial-only raft transport.
//
// What it relies on, in hashicorp/raft v1.8.0:
//   - A response's RPC header is the server's getRPCHeader(): ID is its
//     LocalID (raft.go:36-42), which ValidateConfig requires (config.go:359).
//   - requestPreVote (raft.go:1759-1831) persists nothing: no
//     setCurrentTerm, persistVote or setLastContact; r.observe only feeds
//     observers. It answers Term = currentTerm (raft.go:1764-1768) and,
//     for our term-0 request, grants only when the server has no
//     configuration, no leader, term 0 and an empty log (raft.go:1780,
//     1786, 1795, 1814, 1822) - a never-bootstrapped node. BootstrapCluster
//     sets term 1 (api.go:270), so a node with state answers Term > 0.
//   - appendEntries with a.Term < currentTerm returns before any state
//     change (raft.go:1474), having filled Term and LastLog
//     (raft.go:1461-1467). With term 0 it is not a heartbeat
//     (net_transport.go:673), so it takes the ordinary path through
//     checkRPCHeader (raft.go:1409). Sent to a term-0 node it would pass
//     that check and set the leader (raft.go:1488-1492): never sent then.
//   - checkRPCHeader accepts ProtocolVersionMax (raft.go:56, config.go:105)
//     and a refusal is answered with a nil response and the error text
//     (raft.go:1410), which decodeResponse returns as an error
//     (net_transport.go:783-785), as it does a fenced admitd node's.
//   - genericRPC dials through the StreamLayer with the transport's
//     timeout and sets one I/O deadline per RPC (net_transport.go:410,
//     489-491); with MaxPool 1 the answered connection is pooled
//     (net_transport.go:439-440) and reused by the next RPC
//     (net_transport.go:405), and the server reads every RPC of one
//     connection in one handler (net_transport.go:614-632).
//   - Close closes shutdownCh then the StreamLayer (net_transport.go:338-339),
//     so the listen goroutine's Accept error ends it (net_transport.go:584-586).
func ProbeRaftRPC(ctx context.Context, addr string) RaftAnswer {
	return ProbeRaftRPCFrom(ctx, addr, ProbeFrom{})
}

// ProbeFrom names the server a probe speaks as. The leader probes members
// as itself: a member then drops the term-0 pre-vote on its term check,
// silently, instead of logging a warning about a server it does not know
// at every promotion round. Empty: a random id no server knows.
type ProbeFrom struct {
	ID   string
	Addr string
}

// ProbeRaftRPCFrom is ProbeRaftRPC speaking as from.
func ProbeRaftRPCFrom(ctx context.Context, addr string, from ProbeFrom) RaftAnswer {
	if err := ValidateHostPort(addr); err != nil {
		return RaftAnswer{Error: "raft_addr: " + err.Error()}
	}
	start := time.Now()
	if ctx.Err() != nil {
		return RaftAnswer{Error: deadlineError(ctx, start).Error()}
	}
	ctx, cancel := rpcProbeContext(ctx)
	defer cancel()
	header, err := rpcProbeHeader()
	if err != nil {
		return RaftAnswer{Error: err.Error()}
	}
	if from.ID != "" && from.Addr != "" {
		header.ID, header.Addr = []byte(from.ID), []byte(from.Addr)
	}
	trans := newRPCProbeTransport(ctx)
	defer trans.Close()

	// The transport's deadlines end the RPCs by ctx's deadline; the select
	// is for cancellation, and Close unblocks the abandoned goroutine.
	done := make(chan RaftAnswer, 1)
	go func() { done <- askRaft(trans, raft.ServerAddress(addr), header) }()
	select {
	case a := <-done:
		return a
	case <-ctx.Done():
		return RaftAnswer{Error: deadlineError(ctx, start).Error()}
	}
}

// rpcProbeContext gives the probe a deadline, capped so that a generous
// caller does not hold a connection open for long.
func rpcProbeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	limit := rpcProbeMaxWait
	if _, ok := ctx.Deadline(); !ok {
		limit = rpcProbeDefaultWait
	}
	return context.WithTimeout(ctx, limit)
}

// rpcProbeHeader names the probe with a random id, so it is in no
// server's configuration (the pre-vote is refused before any check of
// terms on a node that has one, raft.go:1780).
func rpcProbeHeader() (raft.RPCHeader, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return raft.RPCHeader{}, fmt.Errorf("probe id: %w", err)
	}
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte("admitd-probe-" + hex.EncodeToString(b[:])),
		Addr:            []byte(rpcProbeSelfAddr),
	}, nil
}

// newRPCProbeTransport is a raft transport that can only dial, once,
// within ctx's deadline (which rpcProbeContext guarantees).
func newRPCProbeTransport(ctx context.Context) *raft.NetworkTransport {
	deadline, _ := ctx.Deadline()
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  newRPCProbeStream(ctx, deadline),
		MaxPool: 1,
		Timeout: max(time.Until(deadline), time.Millisecond),
		Logger:  hclog.NewNullLogger(),
	})
}

// askRaft sends the pre-vote and, only to a server with a term, the
// refused AppendEntries that reports its last index.
func askRaft(trans *raft.NetworkTransport, target raft.ServerAddress, header raft.RPCHeader) RaftAnswer {
	a, err := askPreVote(trans, target, header)
	if err != nil {
		return RaftAnswer{Error: "pre-vote: " + err.Error()}
	}
	if a.Term == 0 {
		// A term-0 server would process the AppendEntries (raft.go:1474
		// lets a.Term == currentTerm through).
		return a
	}
	if err := askLastIndex(trans, target, header, &a); err != nil {
		return RaftAnswer{Error: fmt.Sprintf("append-entries: %v (pre-vote answered id=%q term=%d)", err, a.ID, a.Term)}
	}
	return a
}

// askPreVote sends a term-0 pre-vote with an empty log.
func askPreVote(trans *raft.NetworkTransport, target raft.ServerAddress, header raft.RPCHeader) (RaftAnswer, error) {
	req := raft.RequestPreVoteRequest{RPCHeader: header}
	var resp raft.RequestPreVoteResponse
	start := time.Now()
	if err := trans.RequestPreVote("", target, &req, &resp); err != nil {
		return RaftAnswer{}, err
	}
	if resp.Term == 0 && !resp.Granted {
		// A term-0 server refuses only with a configuration, a leader or a
		// log (raft.go:1780-1826), all of which come with term >= 1: this is
		// an empty answer decoded from something else, not a fresh node.
		return RaftAnswer{}, errors.New("term 0 without a grant is not a raft answer")
	}
	return RaftAnswer{
		Answered: true,
		ID:       string(resp.ID),
		Term:     resp.Term,
		Granted:  resp.Granted,
		RTTMS:    Ms(time.Since(start)),
	}, nil
}

// askLastIndex sends a term-0 AppendEntries with no entries, which a
// server of greater term refuses, reporting its term and last index. It
// goes over the pre-vote's connection (the stream dials once), so it
// reaches the server that answered with a term, not a successor at addr.
func askLastIndex(trans *raft.NetworkTransport, target raft.ServerAddress, header raft.RPCHeader, a *RaftAnswer) error {
	req := raft.AppendEntriesRequest{RPCHeader: header}
	var resp raft.AppendEntriesResponse
	if err := trans.AppendEntries("", target, &req, &resp); err != nil {
		return err
	}
	switch {
	case resp.Success:
		return errors.New("the term-0 AppendEntries was accepted")
	case string(resp.ID) != a.ID:
		return fmt.Errorf("answered by id %q", resp.ID)
	case resp.Term < a.Term:
		return fmt.Errorf("term went back to %d", resp.Term)
	}
	a.Term = resp.Term // terms only grow: this is the later one
	a.LastIndex, a.LastIndexKnown = resp.LastLog, true
	return nil
}

// rpcProbeStream is the probe transport's StreamLayer: one dial, within
// the deadline, and no listening.
type rpcProbeStream struct {
	ctx      context.Context
	deadline time.Time
	done     chan struct{}

	mu     sync.Mutex
	dialed bool
	closed bool
	conns  []net.Conn
}

func newRPCProbeStream(ctx context.Context, deadline time.Time) *rpcProbeStream {
	return &rpcProbeStream{ctx: ctx, deadline: deadline, done: make(chan struct{})}
}

var (
	errRPCProbeRedial = errors.New("raft probe dials once")
	errRPCProbeClosed = errors.New("raft probe transport closed")
)

// Dial connects once; a second dial would reach whoever holds addr now.
func (s *rpcProbeStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if err := s.claimDial(); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout, Deadline: s.deadline}
	c, err := d.DialContext(s.ctx, "tcp", string(addr))
	if err != nil {
		return nil, err
	}
	if !s.track(c) {
		c.Close()
		return nil, errRPCProbeClosed
	}
	if err := c.SetDeadline(s.deadline); err != nil {
		c.Close()
		return nil, err
	}
	return rpcProbeConn{Conn: c, deadline: s.deadline}, nil
}

func (s *rpcProbeStream) claimDial() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialed {
		return errRPCProbeRedial
	}
	s.dialed = true
	return nil
}

// track records c so Close can end an RPC blocked on it.
func (s *rpcProbeStream) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// Accept blocks until Close: the probe serves nothing.
func (s *rpcProbeStream) Accept() (net.Conn, error) {
	<-s.done
	return nil, errRPCProbeClosed
}

// Close ends Accept and the dialed connection (the transport does not
// close pooled connections itself).
func (s *rpcProbeStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	for _, c := range s.conns {
		c.Close()
	}
	return nil
}

func (s *rpcProbeStream) Addr() net.Addr { return rpcProbeAddr{} }

// rpcProbeAddr is the fixed placeholder the stream reports as its address.
type rpcProbeAddr struct{}

func (rpcProbeAddr) Network() string { return "tcp" }
func (rpcProbeAddr) String() string  { return rpcProbeSelfAddr }

// rpcProbeConn keeps every I/O deadline the transport sets within the
// probe's: genericRPC sets now+timeout per RPC, which for the second RPC
// would reach past ctx's deadline.
type rpcProbeConn struct {
	net.Conn
	deadline time.Time
}

func (c rpcProbeConn) SetDeadline(t time.Time) error {
	return c.Conn.SetDeadline(c.within(t))
}

func (c rpcProbeConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.within(t))
}

func (c rpcProbeConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.within(t))
}

func (c rpcProbeConn) within(t time.Time) time.Time {
	if t.IsZero() || t.After(c.deadline) {
		return c.deadline
	}
	return t
}
