package admitd_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/admitd/admitd"
)

// A host with its own FSM wraps it, builds raft as usual, and gates its
// joins: here a fresh raft server, which runs nothing of admitd, is admitted
// as a voter on the facts its raft server gives.
func ExampleNew() {
	leader, fsm, _ := startRaft("n1", true)
	defer leader.Shutdown()
	gate, err := admitd.New(leader, fsm, admitd.WithLocalID("n1"), admitd.WithStaged(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gate.Close()

	candidate, _, candidateAddr := startRaft("n2", false) // never bootstrapped: fresh
	defer candidate.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := gate.Admit(ctx, admitd.Candidate{ID: "n2", RaftAddr: candidateAddr})
	switch {
	case err != nil:
		fmt.Println("no decision:", err)
	case !d.Allowed:
		fmt.Println("refused:", d.Reason)
	default:
		fmt.Println("admitted n2 as", d.Applied.Suffrage)
	}
	// Output: admitted n2 as voter
}

// hostFSM is the host's own state machine; admitd never sees inside it.
type hostFSM struct{}

func (hostFSM) Apply(*raft.Log) any                 { return nil }
func (hostFSM) Snapshot() (raft.FSMSnapshot, error) { return hostSnapshot{}, nil }
func (hostFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type hostSnapshot struct{}

func (hostSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (hostSnapshot) Release()                          {}

// Raft timeouts of the in-process servers of this package's tests (this
// example's and the benchmarks'). Shorter than raft's defaults, so that a
// one-server cluster elects itself quickly, but long enough that leadership
// survives half a second unscheduled: the suite runs under -race, packages
// side by side, on machines as small and as loaded as a 2-core CI runner,
// where in-process clusters of two voters with 100 ms (lease 50 ms) lost
// their leader mid-test. raft requires
// LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout.
const (
	testHeartbeatTimeout   = 500 * time.Millisecond
	testElectionTimeout    = 500 * time.Millisecond
	testLeaderLeaseTimeout = 500 * time.Millisecond
)

// startRaft starts a raft server on 127.0.0.1 with its FSM wrapped; with
// bootstrap it forms a one-server cluster and waits (bounded) to lead it.
func startRaft(id string, bootstrap bool) (*raft.Raft, *admitd.FSM, string) {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.Logger = hclog.NewNullLogger()
	conf.HeartbeatTimeout, conf.ElectionTimeout = testHeartbeatTimeout, testElectionTimeout
	conf.LeaderLeaseTimeout, conf.CommitTimeout = testLeaderLeaseTimeout, 5*time.Millisecond
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		panic(err)
	}
	fsm := admitd.WrapFSM(hostFSM{})
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		panic(err)
	}
	if bootstrap {
		servers := []raft.Server{{ID: conf.LocalID, Address: trans.LocalAddr()}}
		r.BootstrapCluster(raft.Configuration{Servers: servers})
		for i := 0; i < 500 && r.State() != raft.Leader; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return r, fsm, string(trans.LocalAddr())
}
