package facts

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// lookupFunc resolves a host name, as net.Resolver.LookupNetIP does.
type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// lookupHook, when set, replaces the system resolver: tests set it. It is
// atomic because a section abandoned at its deadline may still be resolving
// when the next test swaps it.
var lookupHook atomic.Pointer[lookupFunc]

func lookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if f := lookupHook.Load(); f != nil {
		return (*f)(ctx, network, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// CanonicalAddresses resolves a raft address (host:port) to the TCP
// endpoints a dial of it can reach, in canonical form: each resolved IP,
// IPv4-mapped IPv6 unmapped, with the port as a plain number, formatted by
// netip.AddrPort.String ("127.0.0.1:39811", "[::1]:39811"). An IP literal
// is taken as it is, with its zone; a name is resolved with
// net.DefaultResolver.LookupNetIP under ctx. The result is sorted and has
// no duplicates. Two spellings of one endpoint ("localhost:39811",
// "127.0.0.1:039811", "[::ffff:127.0.0.1]:39811") share an element;
// distinct IPs never do, loopback ones included (127.0.0.1 and 127.0.0.2
// are different addresses: only a listener bound to 0.0.0.0 answers on
// both).
func CanonicalAddresses(ctx context.Context, addr string) ([]string, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" {
		return nil, fmt.Errorf("%q has no host", addr)
	}
	// The port as the dialer reads it: "0039811" and "+39811" are 39811.
	port, err := net.DefaultResolver.LookupPort(ctx, "tcp", portText)
	if err != nil {
		return nil, fmt.Errorf("%q: port: %v", addr, err)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("%q has no port in 1..65535", addr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = lookupNetIP(ctx, "ip", host); err != nil {
		return nil, fmt.Errorf("resolving %q: %v", addr, err)
	}
	eps := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			eps = append(eps, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("resolving %q: no addresses", addr)
	}
	slices.SortFunc(eps, netip.AddrPort.Compare)
	eps = slices.Compact(eps)
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.String()
	}
	return out, nil
}

// resolve fills a Resolution for addr. An empty address has nothing to
// resolve: no canonical addresses and no error.
func resolve(ctx context.Context, addr string) Resolution {
	res := Resolution{CanonicalAddresses: []string{}}
	if addr == "" {
		return res
	}
	canon, err := CanonicalAddresses(ctx, addr)
	if err != nil {
		res.AddressError = err.Error()
		return res
	}
	res.CanonicalAddresses = canon
	return res
}

// resolveAll resolves each distinct address of addrs at once under ctx.
func resolveAll(ctx context.Context, addrs []string) map[string]Resolution {
	distinct := slices.Compact(slices.Sorted(slices.Values(addrs)))
	results := make([]Resolution, len(distinct))
	var wg sync.WaitGroup
	for i, a := range distinct {
		wg.Go(func() { results[i] = resolve(ctx, a) })
	}
	wg.Wait()
	out := make(map[string]Resolution, len(distinct))
	for i, a := range distinct {
		out[a] = results[i]
	}
	return out
}

// resolution is r's entry for addr, with a slice of its own so no two
// entries of a document share one.
func resolution(r map[string]Resolution, addr string) Resolution {
	res, ok := r[addr]
	if !ok {
		return Resolution{CanonicalAddresses: []string{}, AddressError: fmt.Sprintf("%q was not resolved", addr)}
	}
	res.CanonicalAddresses = append([]string{}, res.CanonicalAddresses...)
	return res
}
