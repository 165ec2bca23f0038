package facts

import (
	"context"
	"errors"
	"fmt"
)

// raftFetch is one raft probe of the candidate whose answer several
// collectors wait for, like stateFetch.
type raftFetch struct {
	done   chan struct{}
	res    RaftAnswer // written once, before done is closed
	cancel context.CancelFunc
}

func startRaftFetch(ctx context.Context, addr string, from ProbeFrom) *raftFetch {
	pctx, cancel := probeContext(ctx)
	f := &raftFetch{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(f.done)
		f.res = ProbeRaftRPCFrom(pctx, addr, from)
	}()
	return f
}

func (f *raftFetch) wait(ctx context.Context) (RaftAnswer, error) {
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return RaftAnswer{}, ctx.Err()
	}
}

// rpcFact is the reachability view of the probe.
func (a RaftAnswer) rpcFact() RaftRPC {
	return RaftRPC{OK: a.Answered, ID: a.ID, RTTMS: a.RTTMS, Error: a.Error}
}

// initFact is the init-state view of the probe.
func (a RaftAnswer) initFact() RaftInit {
	return RaftInit{ID: a.ID, Term: a.Term, Granted: a.Granted, LastIndex: a.LastIndex, LastIndexKnown: a.LastIndexKnown}
}

// hasState says the raft answer shows any sign of state.
func (a RaftAnswer) hasState() bool {
	return a.Term > 0 || !a.Granted || (a.LastIndexKnown && a.LastIndex > 0)
}

// answerError is the probe's failure as an error, nil when it answered.
func (a RaftAnswer) answerError() error {
	if a.Answered {
		return nil
	}
	if a.Error == "" {
		return errors.New("raft probe: no answer")
	}
	return fmt.Errorf("raft probe: %s", a.Error)
}

// memberHealthRaft judges a member that serves no /v1/state from its raft
// server's own answer: it answers as itself in the leader's term, with
// its last index.
func memberHealthRaft(ctx context.Context, cc ClusterConfig, cs ConfigServer) memberAnswer {
	a := ProbeRaftRPCFrom(ctx, cs.Address, ProbeFrom{ID: cc.LeaderID, Addr: cc.LeaderAddr})
	ok := a.Answered && a.ID == cs.ID && cc.Term > 0 && a.Term == cc.Term && a.LastIndexKnown
	return memberAnswer{answered: ok, lastIndex: a.LastIndex}
}
