package facts

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeResolver replaces the system resolver for one test: names maps a
// host to its addresses; any other host is "no such host".
func fakeResolver(t *testing.T, names map[string][]string) {
	t.Helper()
	setLookup(t, func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ips, ok := names[strings.ToLower(host)]
		if !ok {
			return nil, errors.New("lookup " + host + ": no such host")
		}
		var out []netip.Addr
		for _, s := range ips {
			a := netip.MustParseAddr(s)
			if a.Is4() {
				a = netip.AddrFrom16(a.As16()) // as the system resolver returns it
			}
			out = append(out, a)
		}
		return out, nil
	})
}

// setLookup makes f the resolver until the test ends.
func setLookup(t *testing.T, f lookupFunc) {
	t.Helper()
	lookupHook.Store(&f)
	t.Cleanup(func() { lookupHook.Store(nil) })
}

func TestCanonicalAddresses(t *testing.T) {
	fakeResolver(t, map[string][]string{
		"localhost":    {"127.0.0.1", "::1"},
		"n2.test":      {"127.0.0.1"},
		"twice.test":   {"10.0.0.2", "10.0.0.1", "10.0.0.2", "::ffff:10.0.0.1"},
		"v6first.test": {"fd00::1", "10.0.0.9"},
		"empty.test":   {},
	})
	for _, c := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:39811", []string{"127.0.0.1:39811"}},
		{"127.0.0.1:0039811", []string{"127.0.0.1:39811"}},
		{"127.0.0.1:+39811", []string{"127.0.0.1:39811"}},
		{"[::ffff:127.0.0.1]:39811", []string{"127.0.0.1:39811"}},
		{"[::FFFF:7f00:1]:39811", []string{"127.0.0.1:39811"}},
		{"[::1]:39811", []string{"[::1]:39811"}},
		{"[0:0:0:0:0:0:0:1]:39811", []string{"[::1]:39811"}},
		{"[fe80::1%eth0]:39811", []string{"[fe80::1%eth0]:39811"}},
		{"localhost:39811", []string{"127.0.0.1:39811", "[::1]:39811"}},
		{"LocalHost:039811", []string{"127.0.0.1:39811", "[::1]:39811"}},
		{"n2.test:39811", []string{"127.0.0.1:39811"}},
		// Several addresses: all of them, sorted (IPv4 first), each once.
		{"twice.test:7401", []string{"10.0.0.1:7401", "10.0.0.2:7401"}},
		{"v6first.test:7401", []string{"10.0.0.9:7401", "[fd00::1]:7401"}},
		// Loopback addresses are distinct addresses.
		{"127.0.0.2:39811", []string{"127.0.0.2:39811"}},
	} {
		got, err := CanonicalAddresses(t.Context(), c.addr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("CanonicalAddresses(%q) = %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
	for _, addr := range []string{
		"", "127.0.0.1", "127.0.0.1:", ":39811", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:no-such-service-here", "nowhere.invalid:7401", "empty.test:7401",
		"127.000.000.001:7401", // not an IP literal, and no such name: a dial fails too
	} {
		if got, err := CanonicalAddresses(t.Context(), addr); err == nil {
			t.Errorf("CanonicalAddresses(%q) = %q, want an error", addr, got)
		}
	}
}

// The system resolver itself: a literal needs no lookup, and localhost
// resolves to a loopback address wherever the tests run.
func TestCanonicalAddressesSystemResolver(t *testing.T) {
	got, err := CanonicalAddresses(t.Context(), "[::ffff:127.0.0.1]:039811")
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:39811"}) {
		t.Fatalf("mapped literal: %q %v", got, err)
	}
	got, err = CanonicalAddresses(t.Context(), "localhost:39811")
	if err != nil || len(got) == 0 {
		t.Fatalf("localhost: %q %v", got, err)
	}
	for _, a := range got {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || !ap.Addr().IsLoopback() || ap.Port() != 39811 || ap.Addr().Is4In6() {
			t.Errorf("localhost resolved to %q (%v)", a, err)
		}
	}
}

func TestCanonicalAddressesHonoursDeadline(t *testing.T) {
	setLookup(t, func(ctx context.Context, _, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	r := resolve(ctx, "slow.test:7401")
	if len(r.CanonicalAddresses) != 0 || !strings.Contains(r.AddressError, "deadline exceeded") {
		t.Fatalf("resolution %+v", r)
	}
}

// The collector resolves the candidate, the leader and every member; an
// address that does not resolve is a fact (an error, no canonical
// addresses), never a failed section.
func TestTopologyResolvesAddresses(t *testing.T) {
	fakeResolver(t, map[string][]string{"localhost": {"127.0.0.1", "::1"}, "n2.test": {"127.0.0.1"}})
	view := &fakeView{cfg: ClusterConfig{
		ClusterID: "c1", Index: 9, Term: 2, SelfID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7401",
		Servers: []ConfigServer{
			{ID: "n1", Address: "127.0.0.1:7401", Suffrage: Voter},
			{ID: "n2", Address: "n2.test:39811", Suffrage: Voter},
			{ID: "n3", Address: "gone.invalid:7401", Suffrage: Nonvoter},
		},
	}}
	cand := candidate("localhost:39811", "")
	doc := Gather(t.Context(), testConfig(), cand, view)
	tp := doc.Topology
	assertCollected(t, "topology", tp.Section)

	ca := tp.CandidateAddress
	if ca == nil || ca.Address != "localhost:39811" || !slices.Equal(ca.CanonicalAddresses, []string{"127.0.0.1:39811", "[::1]:39811"}) || ca.AddressError != "" {
		t.Fatalf("candidate_address %+v", ca)
	}
	if l := tp.Leader; !slices.Equal(l.CanonicalAddresses, []string{"127.0.0.1:7401"}) || l.AddressError != "" {
		t.Fatalf("leader %+v", l)
	}
	want := map[string][]string{"n1": {"127.0.0.1:7401"}, "n2": {"127.0.0.1:39811"}, "n3": {}}
	for _, s := range tp.Servers {
		if !slices.Equal(s.CanonicalAddresses, want[s.ID]) {
			t.Errorf("%s: canonical %q, want %q", s.ID, s.CanonicalAddresses, want[s.ID])
		}
		if (s.ID == "n3") != (s.AddressError != "") {
			t.Errorf("%s: address_error %q", s.ID, s.AddressError)
		}
	}
	if !strings.Contains(tp.Servers[2].AddressError, "gone.invalid") {
		t.Errorf("n3's error does not name its address: %q", tp.Servers[2].AddressError)
	}

	// Empty lists are [] in JSON, never null, and the document decodes.
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"id":"n3","address":"gone.invalid:7401","canonical_addresses":[],"address_error":"resolving`) {
		t.Errorf("n3 in JSON: %s", raw)
	}
	if _, err := DecodeBytes(raw); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestTopologyCandidateUnresolved(t *testing.T) {
	fakeResolver(t, map[string][]string{})
	doc := Gather(t.Context(), testConfig(), candidate("nowhere.invalid:7431", ""), soloView())
	assertCollected(t, "topology", doc.Topology.Section)
	ca := doc.Topology.CandidateAddress
	if ca == nil || ca.CanonicalAddresses == nil || len(ca.CanonicalAddresses) != 0 || !strings.Contains(ca.AddressError, "no such host") {
		t.Fatalf("candidate_address %+v", ca)
	}
}

// Removal facts and /v1/cluster have no candidate address to compare; the
// members are resolved all the same.
func TestTopologyWithoutCandidate(t *testing.T) {
	for name, tp := range map[string]*Topology{
		"cluster": GatherTopology(t.Context(), testConfig(), soloView()),
		"remove":  GatherRemove(t.Context(), testConfig(), Candidate{ID: "n1"}, ChangeRemove, soloView()).Topology,
	} {
		assertCollected(t, name, tp.Section)
		if tp.CandidateAddress != nil {
			t.Errorf("%s: candidate_address %+v", name, tp.CandidateAddress)
		}
		if !slices.Equal(tp.Servers[0].CanonicalAddresses, []string{"127.0.0.1:7401"}) {
			t.Errorf("%s: server %+v", name, tp.Servers[0])
		}
	}
	// No leader: nothing to resolve, and no error.
	view := soloView()
	view.cfg.LeaderID, view.cfg.LeaderAddr = "", ""
	tp := GatherTopology(t.Context(), testConfig(), view)
	if l := tp.Leader; l.CanonicalAddresses == nil || len(l.CanonicalAddresses) != 0 || l.AddressError != "" {
		t.Errorf("no leader: %+v", l)
	}
}
