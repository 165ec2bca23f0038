// Command gencaps writes policies/capabilities.json: the set of Rego builtins
// that admitd policies may call. The daemon and policy CI (`opa check
// --capabilities`, `opa test --capabilities`) load the same file, so a policy
// that passes CI cannot call anything the daemon would refuse.
//
// It starts from the capabilities of the OPA version admitd is built with and
// removes every builtin that reaches the network or the runtime, or whose
// result is not a function of its arguments (a decision must be reproducible
// from the facts document it was made on). The one exception is time.now_ns:
// maintenance-window site policies need the current time.
//
// The pure net.cidr_* builtins (net.cidr_contains, net.cidr_intersects,
// net.cidr_merge, net.cidr_expand, net.cidr_is_valid, ...) are kept: they only
// do arithmetic on their arguments, never touch the network, and site policies
// use them to restrict the addresses a candidate may join from. Only
// net.lookup_ip_addr (a DNS query) goes.
//
// Usage:
//
//	go run ./internal/tools/gencaps > policies/capabilities.json
//
// What was removed is printed to stderr.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// alwaysRemoved are removed even if a future OPA stopped marking them
// nondeterministic: they do network or runtime I/O.
var alwaysRemoved = []string{
	"http.send",          // arbitrary HTTP requests
	"net.lookup_ip_addr", // DNS queries
	"opa.runtime",        // environment variables, config, process details
}

// keptNondeterministic are nondeterministic builtins that policies may still call.
var keptNondeterministic = []string{
	"time.now_ns", // maintenance windows
}

// removal records one builtin that was dropped and why.
type removal struct {
	Name   string
	Reason string
}

// output is the JSON document written. It shadows Capabilities.AllowNet,
// whose omitempty tag would drop an empty list: an omitted allow_net means
// "any host", an empty one means "no host".
type output struct {
	*ast.Capabilities
	AllowNet []string `json:"allow_net"`
}

// generate returns the capabilities document and the builtins it removed.
func generate() ([]byte, []removal, error) {
	caps := ast.CapabilitiesForThisVersion()

	var removed []removal
	kept := make([]*ast.Builtin, 0, len(caps.Builtins))
	for _, b := range caps.Builtins {
		switch {
		case slices.Contains(alwaysRemoved, b.Name):
			removed = append(removed, removal{b.Name, "network or runtime I/O"})
		case b.Nondeterministic && !slices.Contains(keptNondeterministic, b.Name):
			removed = append(removed, removal{b.Name, "nondeterministic"})
		default:
			kept = append(kept, b)
		}
	}
	slices.SortFunc(kept, func(a, b *ast.Builtin) int { return cmp.Compare(a.Name, b.Name) })
	caps.Builtins = kept

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(output{Capabilities: caps, AllowNet: []string{}}); err != nil {
		return nil, nil, err
	}
	// Encode ends the document with a newline.
	return buf.Bytes(), removed, nil
}

func run(stdout, stderr io.Writer) error {
	doc, removed, err := generate()
	if err != nil {
		return err
	}
	for _, r := range removed {
		fmt.Fprintf(stderr, "gencaps: removed %s (%s)\n", r.Name, r.Reason)
	}
	fmt.Fprintln(stderr, "gencaps: allow_net set to [] (no network access)")
	_, err = stdout.Write(doc)
	return err
}

func main() {
	if err := run(os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gencaps:", err)
		os.Exit(1)
	}
}
