package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/admitd/admitd/policies"
)

// resolvedFacts is the part of a decision's facts the duplicate-address
// rule reads: every address with what the leader resolved it to.
type resolvedFacts struct {
	Topology struct {
		CandidateAddress *struct {
			Address            string   `json:"address"`
			CanonicalAddresses []string `json:"canonical_addresses"`
			AddressError       string   `json:"address_error"`
		} `json:"candidate_address"`
		Leader struct {
			ID                 string   `json:"id"`
			CanonicalAddresses []string `json:"canonical_addresses"`
		} `json:"leader"`
		Servers []struct {
			ID                 string   `json:"id"`
			Address            string   `json:"address"`
			CanonicalAddresses []string `json:"canonical_addresses"`
			AddressError       string   `json:"address_error"`
		} `json:"servers"`
	} `json:"topology"`
}

func (f resolvedFacts) canonicalOf(id string) []string {
	for _, s := range f.Topology.Servers {
		if s.ID == id {
			return s.CanonicalAddresses
		}
	}
	return nil
}

// topologyDenies evaluates the shipped topology stage alone on facts, as
// the pipeline would had the stages before it passed: the second line,
// judged on what the real collector gathered.
func topologyDenies(t *testing.T, facts json.RawMessage) []violation {
	t.Helper()
	var input any
	if err := json.Unmarshal(facts, &input); err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("data.admitd.stages.topology.deny"), rego.Input(input), rego.StrictBuiltinErrors(true)}
	files, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(policies.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, rego.Module(f, string(b)))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("evaluating the topology stage: %v %+v", err, rs)
	}
	raw, _ := json.Marshal(rs[0].Expressions[0].Value)
	var out []violation
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// 127.0.0.1 and 127.0.0.2 are different addresses; localhost, a
// zero-padded port and an IPv4-mapped IPv6 address are not. An admission
// of "evil" at any spelling of n2's raft address is refused, and so is
// one at 127.0.0.2, and nothing changes.
func TestCanonicalDuplicateAddressRefused(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, "n1", "n2")
	leader := waitLeader(t, nodes...)
	var n2 *node
	for _, n := range nodes {
		if n.id == "n2" {
			n2 = n
		}
	}
	host, port, err := net.SplitHostPort(n2.raftAddr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("n2's raft address %q: %v", n2.raftAddr, err)
	}
	n2Canonical := "127.0.0.1:" + port
	before := mustCluster(t, leader)

	for _, c := range []struct{ name, addr string }{
		{"localhost", "localhost:" + port},
		{"zero-padded port", "127.0.0.1:0" + port},
		{"ipv4-mapped ipv6", "[::ffff:127.0.0.1]:" + port},
	} {
		for _, dryRun := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s dry_run=%v", c.name, dryRun), func(t *testing.T) {
				cand := candidate{ID: "evil", RaftAddr: c.addr}
				r := admit(t, leader, cand, dryRun)
				if r.status != http.StatusForbidden {
					t.Fatalf("status %d, want 403: %s", r.status, r.body)
				}
				d := r.decision
				if d.Allowed || d.Applied != nil || !d.Permanent {
					t.Fatalf("allowed=%v applied=%+v permanent=%v, want a permanent deny: %s", d.Allowed, d.Applied, d.Permanent, d.Reason)
				}
				// The raft probe reaches n2 first and refuses who answers;
				// the topology stage would refuse the address itself.
				switch stop := d.stoppedAt(); {
				case stop == "reachability" && slices.Contains(d.denyCodes(stop), "RAFT_ID_MISMATCH"):
				case stop == "topology" && slices.Contains(d.denyCodes(stop), "DUPLICATE_ADDRESS"):
				default:
					t.Fatalf("stopped at %q with %v, want RAFT_ID_MISMATCH or DUPLICATE_ADDRESS: %s", stop, d.denyCodes(stop), d.Reason)
				}
				if !strings.Contains(d.Reason, "n2") {
					t.Errorf("the deny does not name n2: %s", d.Reason)
				}
				t.Logf("%s: %s", c.addr, d.Reason)

				var f resolvedFacts
				if err := json.Unmarshal(d.Facts, &f); err != nil {
					t.Fatal(err)
				}
				ca := f.Topology.CandidateAddress
				if ca == nil || ca.Address != c.addr || !slices.Contains(ca.CanonicalAddresses, n2Canonical) || ca.AddressError != "" {
					t.Fatalf("topology.candidate_address %+v, want %s among its canonical addresses", ca, n2Canonical)
				}
				if got := f.canonicalOf("n2"); !slices.Equal(got, []string{n2Canonical}) {
					t.Fatalf("n2's canonical addresses %q, want [%s]", got, n2Canonical)
				}
				want := fmt.Sprintf("raft address %q is n2's raft address %s: both resolve to %s", c.addr, n2.raftAddr, n2Canonical)
				denies := topologyDenies(t, d.Facts)
				if !slices.ContainsFunc(denies, func(v violation) bool {
					return v.Code == "DUPLICATE_ADDRESS" && strings.Contains(v.Message, want)
				}) {
					t.Errorf("the topology stage on these facts denies %+v, want DUPLICATE_ADDRESS saying %q", denies, want)
				}
			})
		}
	}

	// Another loopback address: nothing listens on 127.0.0.2 unless bound
	// to 0.0.0.0, and it is not n2's address.
	t.Run("other loopback", func(t *testing.T) {
		addr := "127.0.0.2:" + port
		r := admit(t, leader, candidate{ID: "evil", RaftAddr: addr}, false)
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403: %s", r.status, r.body)
		}
		d := r.decision
		stop := d.stoppedAt()
		if d.Allowed || d.Applied != nil || stop == "" {
			t.Fatalf("allowed=%v applied=%+v, want a deny: %s", d.Allowed, d.Applied, d.Reason)
		}
		t.Logf("%s: stopped at %s with %v: %s", addr, stop, d.denyCodes(stop), d.Reason)
		var f resolvedFacts
		if err := json.Unmarshal(d.Facts, &f); err != nil {
			t.Fatal(err)
		}
		if ca := f.Topology.CandidateAddress; ca == nil || !slices.Equal(ca.CanonicalAddresses, []string{addr}) {
			t.Fatalf("topology.candidate_address %+v, want [%s]", ca, addr)
		}
		for _, v := range topologyDenies(t, d.Facts) {
			if v.Code == "DUPLICATE_ADDRESS" {
				t.Errorf("127.0.0.2 taken for n2's 127.0.0.1: %s", v.Message)
			}
		}
	})

	sameConfig(t, "cluster", before, mustCluster(t, leader))
}
