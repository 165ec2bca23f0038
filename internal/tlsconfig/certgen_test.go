package tlsconfig_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/policies"
)

// writeCA creates a CA into dir and loads it back, as the CLI does.
func writeCA(t *testing.T, dir string, opts tlsconfig.CAOptions) (*tlsconfig.CA, string) {
	t.Helper()
	b, err := tlsconfig.CreateCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := b.Write(cert, key, false); err != nil {
		t.Fatal(err)
	}
	ca, err := tlsconfig.LoadCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert
}

func writeBundle(t *testing.T, b tlsconfig.Bundle, dir, name string) (string, string) {
	t.Helper()
	cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := b.Write(cert, key, false); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func pool(ca *tlsconfig.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func TestCreateCA(t *testing.T) {
	ca, _ := writeCA(t, t.TempDir(), tlsconfig.CAOptions{Name: "prod CA", Validity: 10 * 24 * time.Hour})
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 || c.Subject.CommonName != "prod CA" {
		t.Fatalf("CA %+v", c)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("a CA for leaves only should have path length 0, got %d", c.MaxPathLen)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if left := time.Until(c.NotAfter); left < 10*24*time.Hour-time.Minute || left > 10*24*time.Hour {
		t.Errorf("valid for %s more, want 10 days", left)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

func TestNodeCertVerifiesForServerAndClient(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writeCA(t, dir, tlsconfig.CAOptions{})
	b, err := ca.IssueNode(tlsconfig.NodeOptions{
		ID: "n1", TrustDomain: "prod.example",
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, DNSNames: []string{"n1.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Cert
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	for _, host := range []string{"127.0.0.1", "::1", "n1.example"} {
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("host %s: %v", host, err)
		}
	}
	var uris []string
	for _, u := range c.URIs {
		uris = append(uris, u.String())
	}
	if !slices.Equal(uris, []string{"spiffe://prod.example/admitd/n1"}) {
		t.Errorf("URIs %v", uris)
	}
	if c.Subject.CommonName != "n1" {
		t.Errorf("CN %q", c.Subject.CommonName)
	}
	// Another CA does not vouch for it.
	other, _ := writeCA(t, t.TempDir(), tlsconfig.CAOptions{})
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(other)}); err == nil {
		t.Error("verified against another CA")
	}
}

// A real mTLS handshake through Server and Client: the node serves with its
// certificate, the operator calls with a client certificate; a client
// certificate cannot serve.
func TestIssuedCertsOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caFile := writeCA(t, dir, tlsconfig.CAOptions{})
	node, err := ca.IssueNode(tlsconfig.NodeOptions{ID: "n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	op, err := ca.IssueClient(tlsconfig.ClientOptions{ID: "op"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(op.Cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || len(op.Cert.IPAddresses)+len(op.Cert.DNSNames) != 0 {
		t.Fatalf("client certificate %v, IPs %v, DNS %v", op.Cert.ExtKeyUsage, op.Cert.IPAddresses, op.Cert.DNSNames)
	}
	if got := op.Cert.URIs[0].String(); got != "spiffe://admitd/admitd-client/op" {
		t.Fatalf("client URI %s", got)
	}
	nodeCert, nodeKey := writeBundle(t, node, dir, "n1")
	opCert, opKey := writeBundle(t, op, dir, "op")

	serve := func(cert, key string) string {
		cfg, err := tlsconfig.Server(cert, key, caFile)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
		}))
		srv.TLS = cfg
		// Refused handshakes are expected here; keep them out of the output.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	get := func(url, cert, key string) (string, error) {
		cfg, err := tlsconfig.Client(cert, key, caFile)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	url := serve(nodeCert, nodeKey)
	if who, err := get(url, opCert, opKey); err != nil || who != "op" {
		t.Fatalf("operator to node: %q %v", who, err)
	}
	// Nodes call each other with their own certificate.
	if who, err := get(url, nodeCert, nodeKey); err != nil || who != "n1" {
		t.Fatalf("node to node: %q %v", who, err)
	}
	if _, err := get(url, "", ""); err == nil {
		t.Fatal("a caller without a certificate was served")
	}
	if _, err := get(serve(opCert, opKey), nodeCert, nodeKey); err == nil {
		t.Fatal("a client-only certificate served the API")
	}
}

// noCluster is a cluster view that fails: only the candidate's API matters.
type noCluster struct{}

func (noCluster) ClusterConfig(context.Context) (facts.ClusterConfig, error) {
	return facts.ClusterConfig{}, errors.New("no cluster in this test")
}

// identityFacts collects, the way a leader does, the TLS identity of an API
// served with the certificate issued for certID, and puts it into the
// otherwise admissible scenario whose candidate is n4.
func identityFacts(t *testing.T, ca *tlsconfig.CA, caFile, certID string) *admission.Input {
	t.Helper()
	dir := t.TempDir()
	b, err := ca.IssueNode(tlsconfig.NodeOptions{ID: certID, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeBundle(t, b, dir, certID)
	srvCfg, err := tlsconfig.Server(cert, key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(facts.NodeState{NodeID: "n4", RaftAddr: "127.0.0.1:1", Version: "0.1.0", RaftState: "Follower"})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(state)
	}))
	srv.TLS = srvCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// The leader calls with its own node certificate.
	leader, err := ca.IssueNode(tlsconfig.NodeOptions{ID: "n1", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	lc, lk := writeBundle(t, leader, dir, "n1")
	cliCfg, err := tlsconfig.Client(lc, lk, caFile)
	if err != nil {
		t.Fatal(err)
	}
	collect := facts.CollectConfig{HTTPClient: facts.NewHTTPClient(cliCfg), TLSRequired: true, RaftDialAttempts: 1}
	got := facts.Gather(t.Context(), collect, facts.Candidate{ID: "n4", RaftAddr: closedAddr(t), APIURL: srv.URL}, noCluster{})
	if !got.Reachability.Collected || !got.Reachability.API.OK {
		t.Fatalf("reachability %+v", got.Reachability)
	}

	raw, err := os.ReadFile("../../testdata/scenarios/allow-tls-spiffe-identity/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := facts.DecodeBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc.Doc.Reachability.API.TLS = got.Reachability.API.TLS
	in, err := admission.InputFromDocument(doc.Doc)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The identity check the leader runs (the collector recording the
// certificate behind /v1/state, then the shipped reachability stage)
// accepts an issued certificate for its own id and refuses it for another.
func TestIssuedNodeCertProvesItsIDOnly(t *testing.T) {
	ctx := t.Context()
	engine, err := admission.Load(ctx, admission.Source{FS: policies.FS, Name: "embedded"})
	if err != nil {
		t.Fatal(err)
	}
	ca, caFile := writeCA(t, t.TempDir(), tlsconfig.CAOptions{})

	d := engine.Evaluate(ctx, identityFacts(t, ca, caFile, "n4"))
	if !d.Allowed {
		t.Fatalf("candidate n4 with its own certificate: %s", d.Reason)
	}
	d = engine.Evaluate(ctx, identityFacts(t, ca, caFile, "n9"))
	if d.Allowed || d.StoppedAt != "reachability" || !strings.Contains(d.Reason, "IDENTITY_MISMATCH") {
		t.Fatalf("candidate n4 presenting n9's certificate: allowed %v, reason %s", d.Allowed, d.Reason)
	}
}

func TestWriteModesAndRefusal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new") // created by Write
	b, err := tlsconfig.CreateCA(tlsconfig.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := b.Write(cert, key, false); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if mode(key) != 0o600 || mode(cert) != 0o644 {
		t.Fatalf("modes: key %v, cert %v", mode(key), mode(cert))
	}

	other, err := tlsconfig.CreateCA(tlsconfig.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Write(cert, key, false)
	if !errors.Is(err, tlsconfig.ErrExists) || !strings.Contains(err.Error(), cert) {
		t.Fatalf("overwrite without force: %v", err)
	}
	if got, _ := os.ReadFile(key); !bytes.Equal(got, b.KeyPEM) {
		t.Fatal("the refused write changed the key")
	}

	// Only the key is there: the certificate is not written either.
	alone := t.TempDir()
	if err := os.WriteFile(filepath.Join(alone, "ca-key.pem"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := other.Write(filepath.Join(alone, "ca.pem"), filepath.Join(alone, "ca-key.pem"), false); !errors.Is(err, tlsconfig.ErrExists) {
		t.Fatalf("half a pair: %v", err)
	}
	if _, err := os.Stat(filepath.Join(alone, "ca.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the certificate was written beside a refused key: %v", err)
	}

	// --force replaces both, and a key made readable keeps 0600.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := other.Write(cert, key, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(key); !bytes.Equal(got, other.KeyPEM) || mode(key) != 0o600 {
		t.Fatalf("forced write: new key %v, mode %v", bytes.Equal(got, other.KeyPEM), mode(key))
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		t.Fatalf("the replaced pair does not load: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestLoadCARefusesWhatCannotSign(t *testing.T) {
	dir := t.TempDir()
	ca, caFile := writeCA(t, dir, tlsconfig.CAOptions{})
	node, err := ca.IssueNode(tlsconfig.NodeOptions{ID: "n1", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey := writeBundle(t, node, dir, "n1")
	if _, err := tlsconfig.LoadCA(nodeCert, nodeKey); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("a node certificate as CA: %v", err)
	}
	if _, err := tlsconfig.LoadCA(caFile, nodeKey); err == nil {
		t.Fatal("a CA with another certificate's key loaded")
	}
	if _, err := tlsconfig.LoadCA(filepath.Join(dir, "nope.pem"), nodeKey); err == nil {
		t.Fatal("a missing CA loaded")
	}
}

func TestIssueRefusals(t *testing.T) {
	ca, _ := writeCA(t, t.TempDir(), tlsconfig.CAOptions{Validity: 30 * 24 * time.Hour})
	lo := []net.IP{net.ParseIP("127.0.0.1")}
	for name, opts := range map[string]tlsconfig.NodeOptions{
		"no address":          {ID: "n1"},
		"empty id":            {IPs: lo},
		"id with a slash":     {ID: "n1/x", IPs: lo},
		"id with a percent":   {ID: "n%31", IPs: lo},
		"id that is ..":       {ID: "..", IPs: lo},
		"bad trust domain":    {ID: "n1", IPs: lo, TrustDomain: "Prod/x"},
		"IP given as DNS":     {ID: "n1", DNSNames: []string{"10.0.0.1"}},
		"DNS with a space":    {ID: "n1", DNSNames: []string{"a b"}},
		"outlives its CA":     {ID: "n1", IPs: lo, Validity: 31 * 24 * time.Hour},
		"negative validity":   {ID: "n1", IPs: lo, Validity: -time.Hour},
		"DNS with empty part": {ID: "n1", DNSNames: []string{"a..b"}},
	} {
		if _, err := ca.IssueNode(opts); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
	if _, err := ca.IssueClient(tlsconfig.ClientOptions{ID: "op/x"}); err == nil {
		t.Error("client id with a slash: issued")
	}
	if _, err := ca.IssueNode(tlsconfig.NodeOptions{ID: "n1", IPs: lo, Validity: 29 * 24 * time.Hour}); err != nil {
		t.Errorf("within the CA's validity: %v", err)
	}
}
