package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// capsFile is the committed capabilities file, relative to this package.
var capsFile = filepath.Join("..", "..", "..", "policies", "capabilities.json")

func TestCapabilitiesFileUpToDate(t *testing.T) {
	want, _, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(capsFile)
	if err != nil {
		t.Fatalf("%v: run go run ./internal/tools/gencaps > policies/capabilities.json", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go run ./internal/tools/gencaps > policies/capabilities.json", capsFile)
	}
}

func TestCapabilitiesContent(t *testing.T) {
	f, err := os.Open(capsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	caps, err := ast.LoadCapabilitiesJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "uuid.rfc4122"} {
		if caps.ContainsBuiltin(name) {
			t.Errorf("%s must not be allowed", name)
		}
	}
	for _, name := range []string{"time.now_ns", "net.cidr_contains", "sprintf", "count"} {
		if !caps.ContainsBuiltin(name) {
			t.Errorf("%s must be allowed", name)
		}
	}
	for _, b := range caps.Builtins {
		if b.Nondeterministic && b.Name != "time.now_ns" {
			t.Errorf("nondeterministic builtin %s must not be allowed", b.Name)
		}
	}
	if caps.AllowNet == nil || len(caps.AllowNet) != 0 {
		t.Errorf("allow_net = %#v, want [] (no network access)", caps.AllowNet)
	}
}

func TestRunReportsRemovals(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(&stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"http.send", "net.lookup_ip_addr", "opa.runtime"} {
		if !bytes.Contains(stderr.Bytes(), []byte("removed "+name+" ")) {
			t.Errorf("stderr does not report removing %s:\n%s", name, stderr.String())
		}
	}
	if !bytes.HasSuffix(stdout.Bytes(), []byte("}\n")) {
		t.Error("output must end with a newline")
	}
}
