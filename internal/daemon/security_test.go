package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/testutil"
	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

// Raft timeouts of the daemons these tests run. The suite runs packages
// side by side under -race, and on a loaded 2-core machine a process's
// goroutines can go unscheduled for longer than 100-200 ms: in-process
// clusters of two voters with such timeouts (these had 200 ms, lease
// 100 ms) lost their leader mid-test. Leadership now survives half a
// second unscheduled, and a one-node cluster still elects itself within a
// second (raft's defaults, 1 s, take up to two). raft requires
// LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout.
const (
	testHeartbeatTimeout   = 500 * time.Millisecond
	testElectionTimeout    = 500 * time.Millisecond
	testLeaderLeaseTimeout = 500 * time.Millisecond
)

var testRaft = RaftTimeouts{Heartbeat: testHeartbeatTimeout, Election: testElectionTimeout, LeaderLease: testLeaderLeaseTimeout}

// secureNode is the config of a node with a token and mTLS.
func secureNode(t *testing.T, ca *tlstest.CA, id, token string) Config {
	pair := ca.Issue(t, id, []string{tlstest.SPIFFE(id)}, nil)
	policies, _ := filepath.Abs("../../policies")
	return Config{
		ID: id, RaftAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t), DataDir: t.TempDir(), Policies: policies,
		Token: token, TLS: TLSFiles{Cert: pair.Cert, Key: pair.Key, CA: ca.File},
		AdmissionRate: 5, AdmissionBurst: 10, JoinTimeout: 20 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: os.Stderr}),
		Raft:   testRaft,
	}
}

func runNode(t *testing.T, cfg *Config) { startDaemon(t, cfg) }

// A node started with --join presents its certificate and the token, and
// is admitted by a cluster that requires both.
func TestJoinWithTokenOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	n1 := secureNode(t, ca, "n1", "tok")
	n1.Bootstrap = true
	runNode(t, &n1)
	n2 := secureNode(t, ca, "n2", "tok")
	n2.Join = []string{"https://" + n1.HTTPAddr}
	runNode(t, &n2)

	op := ca.Issue(t, "operator", nil, nil)
	tlsCfg, err := tlsconfig.Client(op.Cert, op.Key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(2 * time.Second).WithTLS(tlsCfg)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := cl.State(context.Background(), "https://"+n2.HTTPAddr)
		if err == nil && st.Initialized && st.APIURL == "https://"+n2.HTTPAddr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("n2 not admitted: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLoadSecurity(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue(t, "n1", nil, nil)
	if sec, err := loadSecurity(TLSFiles{}); err != nil || sec.scheme() != "http" {
		t.Fatalf("no TLS: %v", err)
	}
	if _, err := loadSecurity(TLSFiles{CA: ca.File}); err == nil {
		t.Fatal("a CA alone was accepted")
	}
	sec, err := loadSecurity(TLSFiles{Cert: p.Cert, Key: p.Key, CA: ca.File})
	if err != nil || sec.scheme() != "https" || sec.client == nil || len(sec.client.Certificates) != 1 {
		t.Fatalf("TLS: %v", err)
	}
	if c := sec.collect(Config{}.Collect); !c.TLSRequired || c.HTTPClient == nil {
		t.Fatalf("collect config %+v", c)
	}
}
