package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/tlsconfig"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// tlsDir runs `admitd tls ca create` into a new directory.
func tlsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if code, out, errOut := runCmd(t, "", "tls", "ca", "create", "--dir", dir, "--name", "test CA", "--days", "30"); code != exitOK {
		t.Fatalf("ca create: exit %d\n%s%s", code, out, errOut)
	}
	return dir
}

func TestTLSCreateCAAndCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	code, out, errOut := runCmd(t, "", "tls", "ca", "create", "--dir", dir, "--name", "test CA", "--days", "30")
	if code != exitOK {
		t.Fatalf("ca create: exit %d\n%s%s", code, out, errOut)
	}
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	for _, p := range []string{caFile, caKey} {
		if !strings.Contains(out, "wrote "+p+":") {
			t.Errorf("ca create does not print %s:\n%s", p, out)
		}
	}
	if perm(t, caKey) != 0o600 || perm(t, caFile) != 0o644 {
		t.Fatalf("modes: key %v, cert %v", perm(t, caKey), perm(t, caFile))
	}
	ca := readCert(t, caFile)
	if !ca.IsCA || ca.Subject.CommonName != "test CA" {
		t.Fatalf("CA %v %q", ca.IsCA, ca.Subject.CommonName)
	}

	// The CA is found in --dir without --ca and --ca-key.
	code, out, errOut = runCmd(t, "", "tls", "cert", "create", "--dir", dir, "--id", "n1",
		"--ip", "127.0.0.1", "--ip", "10.0.0.1,::1", "--dns", "n1.example", "--days", "7")
	if code != exitOK {
		t.Fatalf("cert create: exit %d\n%s%s", code, out, errOut)
	}
	nodeFile, nodeKey := filepath.Join(dir, "n1.pem"), filepath.Join(dir, "n1-key.pem")
	if !strings.Contains(out, "wrote "+nodeFile+": node n1 (server and client auth), spiffe://admitd/admitd/n1, IP 127.0.0.1, IP 10.0.0.1, IP ::1, DNS n1.example, valid until ") ||
		!strings.Contains(out, "wrote "+nodeKey+": ") {
		t.Fatalf("cert create printed:\n%s", out)
	}
	if perm(t, nodeKey) != 0o600 || perm(t, nodeFile) != 0o644 {
		t.Fatalf("modes: key %v, cert %v", perm(t, nodeKey), perm(t, nodeFile))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	node := readCert(t, nodeFile)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := node.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("node certificate for %v: %v", usage, err)
		}
	}
	var ips []string
	for _, ip := range node.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "10.0.0.1", "::1"}) || !slices.Equal(node.DNSNames, []string{"n1.example"}) {
		t.Errorf("SANs: IPs %v, DNS %v", ips, node.DNSNames)
	}
	// The pair is what serve loads.
	if _, err := tlsconfig.Server(nodeFile, nodeKey, caFile); err != nil {
		t.Fatalf("serve would not load it: %v", err)
	}

	// An operator: client auth only, no addresses.
	code, out, errOut = runCmd(t, "", "tls", "cert", "create", "--dir", dir, "--id", "op", "--client", "--days", "7")
	if code != exitOK || !strings.Contains(out, "client op (client auth only), spiffe://admitd/admitd-client/op,") {
		t.Fatalf("client cert: exit %d\n%s%s", code, out, errOut)
	}
	op := readCert(t, filepath.Join(dir, "op.pem"))
	if !slices.Equal(op.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(op.IPAddresses)+len(op.DNSNames) != 0 {
		t.Fatalf("client certificate: %v %v %v", op.ExtKeyUsage, op.IPAddresses, op.DNSNames)
	}
	if _, err := op.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verifies as a server")
	}
	if _, err := tlsconfig.Client(filepath.Join(dir, "op.pem"), filepath.Join(dir, "op-key.pem"), caFile); err != nil {
		t.Fatalf("the client commands would not load it: %v", err)
	}
}

// Without --ip or --dns a node certificate is for this machine, and says so.
func TestTLSNodeDefaultsToLoopback(t *testing.T) {
	dir := tlsDir(t)
	code, out, errOut := runCmd(t, "", "tls", "cert", "create", "--dir", dir, "--id", "n2", "--days", "7")
	if code != exitOK || !strings.Contains(out, "IP 127.0.0.1, DNS localhost,") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	c := readCert(t, filepath.Join(dir, "n2.pem"))
	if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !slices.Equal(c.DNSNames, []string{"localhost"}) {
		t.Fatalf("SANs %v %v", c.IPAddresses, c.DNSNames)
	}
}

// Existing files are kept unless --force, for the CA and for certificates.
func TestTLSRefusesToOverwrite(t *testing.T) {
	dir := tlsDir(t)
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	code, _, errOut := runCmd(t, "", "tls", "ca", "create", "--dir", dir)
	if code != exitError || !strings.Contains(errOut, filepath.Join(dir, "ca.pem")+" already exists (--force replaces it)") {
		t.Fatalf("ca create again: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(after, caBefore) {
		t.Fatal("the CA key changed")
	}

	args := []string{"tls", "cert", "create", "--dir", dir, "--id", "n1", "--days", "7"}
	if code, _, errOut := runCmd(t, "", args...); code != exitOK {
		t.Fatalf("first: exit %d %s", code, errOut)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "n1-key.pem"))
	code, out, errOut := runCmd(t, "", args...)
	if code != exitError || !strings.Contains(errOut, "n1.pem already exists") || out != "" {
		t.Fatalf("again: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "n1-key.pem")); !bytes.Equal(after, before) {
		t.Fatal("the refused run changed the key")
	}
	if code, _, errOut := runCmd(t, "", append(args, "--force")...); code != exitOK {
		t.Fatalf("--force: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "n1-key.pem")); bytes.Equal(after, before) || perm(t, filepath.Join(dir, "n1-key.pem")) != 0o600 {
		t.Fatal("--force did not replace the key with a 0600 one")
	}
}

func TestTLSUsageErrors(t *testing.T) {
	dir := tlsDir(t)
	cert := func(flags ...string) []string {
		return append([]string{"tls", "cert", "create", "--dir", dir}, flags...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no --id", cert(), "admitd: --id is required"},
		{"bad --ip", cert("--id", "n1", "--ip", "10.0.0"), `admitd: --ip: "10.0.0" is not an IP address`},
		{"unspecified --ip", cert("--id", "n1", "--ip", "0.0.0.0"), "admitd: --ip: 0.0.0.0 is no address"},
		{"IP as --dns", cert("--id", "n1", "--dns", "10.0.0.1"), "admitd: --dns: "},
		{"bad --dns", cert("--id", "n1", "--dns", "a b"), "admitd: --dns: "},
		{"--id with a slash", cert("--id", "n1/x"), "admitd: --id: "},
		{"--id with a space", cert("--id", "n 1"), "admitd: --id: "},
		{"--client with --ip", cert("--id", "op", "--client", "--ip", "127.0.0.1"), "admitd: --ip and --dns are the addresses a node is reached at"},
		{"--days 0", cert("--id", "n1", "--days", "0"), "admitd: --days must be at least 1"},
		{"bad --trust-domain", cert("--id", "n1", "--trust-domain", "Prod"), "admitd: --trust-domain: "},
		{"arguments", cert("--id", "n1", "extra"), "admitd: unexpected arguments"},
		{"unknown flag", cert("--id", "n1", "--server", "x"), "unknown flag: --server"},
		{"ca --days 0", []string{"tls", "ca", "create", "--dir", t.TempDir(), "--days", "0"}, "admitd: --days must be at least 1"},
		{"ca empty --name", []string{"tls", "ca", "create", "--dir", t.TempDir(), "--name", " "}, "admitd: --name must not be empty"},
		{"unknown subcommand", []string{"tls", "cert", "sign"}, `unknown command "sign" for "admitd tls cert"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", c.args...)
			if code != exitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d with %q", code, out, errOut, exitUsage, c.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"ca-key.pem", "ca.pem"}) {
		t.Fatalf("usage errors wrote files: %v", names)
	}
}

// Problems with the CA are errors (exit 1) that name the flags.
func TestTLSCertCAErrors(t *testing.T) {
	empty := t.TempDir()
	code, _, errOut := runCmd(t, "", "tls", "cert", "create", "--dir", empty, "--id", "n1")
	if code != exitError || !strings.Contains(errOut, "--ca "+filepath.Join(empty, "ca.pem")) || !strings.Contains(errOut, "admitd tls ca create") {
		t.Fatalf("no CA: exit %d %s", code, errOut)
	}

	dir := tlsDir(t) // the CA is valid for 30 days
	code, _, errOut = runCmd(t, "", "tls", "cert", "create", "--dir", dir, "--id", "n1", "--days", "31")
	if code != exitError || !strings.Contains(errOut, "--days 31: ") || !strings.Contains(errOut, "after its CA expires") {
		t.Fatalf("outliving the CA: exit %d %s", code, errOut)
	}

	// A node certificate given as the CA.
	if code, _, errOut := runCmd(t, "", "tls", "cert", "create", "--dir", dir, "--id", "n1", "--days", "7"); code != exitOK {
		t.Fatal(errOut)
	}
	out := t.TempDir()
	code, _, errOut = runCmd(t, "", "tls", "cert", "create", "--dir", out, "--id", "n2",
		"--ca", filepath.Join(dir, "n1.pem"), "--ca-key", filepath.Join(dir, "n1-key.pem"))
	if code != exitError || !strings.Contains(errOut, "not a CA certificate") {
		t.Fatalf("node certificate as CA: exit %d %s", code, errOut)
	}
}

// Every tls command explains itself, with exit statuses and an example.
func TestTLSCommandsDescribed(t *testing.T) {
	root := newRoot()
	for _, path := range [][]string{{"tls"}, {"tls", "ca"}, {"tls", "ca", "create"}, {"tls", "cert"}, {"tls", "cert", "create"}} {
		cmd, _, err := root.Find(path)
		if err != nil || cmd.Name() != path[len(path)-1] {
			t.Fatalf("no command %v: %v", path, err)
		}
		if !strings.Contains(cmd.Long, "Exit status: 0") || !strings.Contains(cmd.Long, "2 usage") {
			t.Errorf("%v: Long has no exit statuses", path)
		}
		if !strings.Contains(cmd.Example, "admitd tls") {
			t.Errorf("%v: no example", path)
		}
	}
}

func TestTLSFlagCompletion(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"tls", "cert", "create", "--ca", ""}, []string{"pem", ":8"}},
		{[]string{"tls", "cert", "create", "--dir", ""}, []string{":16"}},
		{[]string{"tls", "ca", "create", "--dir", ""}, []string{":16"}},
		{[]string{"tls", "cert", "create", "--id", ""}, []string{":4"}},
		{[]string{"tls", "cert", "create", "--ip", ""}, []string{":4"}},
	}
	for _, c := range cases {
		code, out, errOut := runCmd(t, "", append([]string{"__complete"}, c.args...)...)
		if got := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("__complete %v: exit %d, got %q, want %q (%s)", c.args, code, got, c.want, errOut)
		}
	}
}
