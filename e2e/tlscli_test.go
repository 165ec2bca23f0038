package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tlsCLI runs `admitd tls ...` and fails the test unless it succeeds.
func tlsCLI(t *testing.T, args ...string) string {
	t.Helper()
	r, err := runCLI(append([]string{"tls"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("admitd tls %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// tlsCreds are the TLS and token flags of a node or an operator whose
// files `admitd tls cert create --dir dir --id id` wrote.
func tlsCreds(dir, id, token string) []string {
	return []string{"--tls-cert", filepath.Join(dir, id+".pem"), "--tls-key", filepath.Join(dir, id+"-key.pem"),
		"--tls-ca", filepath.Join(dir, "ca.pem"), "--token-file", token}
}

// tlsStatus runs `admitd status` against n with creds, first waiting, up
// to waitTimeout, for that many healthy voters and nothing staged.
func tlsStatus(t *testing.T, n *node, voters int, creds []string) cluster {
	t.Helper()
	args := append([]string{"status", "--server", n.url, "--wait-voters", strconv.Itoa(voters), "--timeout", waitTimeout.String(), "-o", "json"}, creds...)
	r, err := runCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("admitd status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Cluster cluster `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("admitd status -o json: %v\n%s", err, r.stdout)
	}
	return out.Cluster
}

// A 3-node mTLS cluster whose CA and certificates come only from
// `admitd tls`: nodes join each other with their node certificates, an
// operator joins one and reads the cluster with a client certificate, the
// leader records each candidate's proven identity, and a node presenting
// another id's certificate, or a caller with a certificate from another
// CA, is refused.
func TestTLSCLICluster(t *testing.T) {
	dir := t.TempDir()
	out := tlsCLI(t, "ca", "create", "--dir", dir)
	if !strings.Contains(out, filepath.Join(dir, "ca.pem")) || !strings.Contains(out, filepath.Join(dir, "ca-key.pem")) {
		t.Fatalf("ca create printed:\n%s", out)
	}
	for _, id := range []string{"n1", "n2", "n3", "n9"} {
		out := tlsCLI(t, "cert", "create", "--dir", dir, "--id", id, "--ip", "127.0.0.1")
		if !strings.Contains(out, "spiffe://admitd/admitd/"+id+", IP 127.0.0.1,") {
			t.Fatalf("cert create %s printed:\n%s", id, out)
		}
	}
	tlsCLI(t, "cert", "create", "--dir", dir, "--id", "op", "--client")
	if fi, err := os.Stat(filepath.Join(dir, "n1-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("n1-key.pem: %v %v", fi, err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tlscli-cluster-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	op := tlsCreds(dir, "op", token)

	// The harness's URLs are http://; these nodes serve only HTTPS.
	https := func(n *node) *node { n.url = "https://" + n.httpAddr; return n }
	n1 := https(startNode(t, opts{id: "n1", bootstrap: true, extra: tlsCreds(dir, "n1", token)}))
	tlsStatus(t, n1, 1, op)
	logContains(t, n1, "bootstrapped a new cluster")

	// n2 joins by itself, calling n1 with its node certificate.
	n2 := https(startNode(t, opts{id: "n2", join: n1.url, extra: tlsCreds(dir, "n2", token)}))
	tlsStatus(t, n1, 2, op)

	// n3 waits; the operator admits it.
	n3 := https(startNode(t, opts{id: "n3", extra: tlsCreds(dir, "n3", token)}))
	r, d := joinCLI(t, n1, n3.candidate(), op...)
	if r.code != 0 || !d.Allowed {
		t.Fatalf("admitd join n3: exit %d, %s\n%s", r.code, d.Reason, r.stderr)
	}
	var f struct {
		Reachability struct {
			API struct {
				TLS struct {
					Enabled  bool     `json:"enabled"`
					Verified bool     `json:"verified"`
					URIs     []string `json:"uris"`
				} `json:"tls"`
			} `json:"api"`
		} `json:"reachability"`
	}
	if err := json.Unmarshal(d.Facts, &f); err != nil {
		t.Fatalf("decision facts: %v", err)
	}
	if got := f.Reachability.API.TLS; !got.Enabled || !got.Verified || !slices.Equal(got.URIs, []string{"spiffe://admitd/admitd/n3"}) {
		t.Fatalf("n3's proven identity: %+v", got)
	}

	c := tlsStatus(t, n2, 3, op)
	if v := c.voters(); !slices.Equal(v, []string{"n1", "n2", "n3"}) {
		t.Fatalf("voters %v, servers %+v", v, c.Servers)
	}

	// A node started as n4 that holds n9's certificate: its /v1/state
	// answer does not prove it is n4.
	n4 := https(startNode(t, opts{id: "n4", extra: tlsCreds(dir, "n9", token)}))
	r, d = joinCLI(t, n1, n4.candidate(), op...)
	if r.code != 3 || d.Allowed || d.stoppedAt() != "reachability" || !slices.Contains(d.denyCodes("reachability"), "IDENTITY_MISMATCH") {
		t.Fatalf("n4 with n9's certificate: exit %d, reason %s", r.code, d.Reason)
	}

	// Callers the cluster's CA did not sign are refused at the handshake.
	other := t.TempDir()
	tlsCLI(t, "ca", "create", "--dir", other)
	tlsCLI(t, "cert", "create", "--dir", other, "--id", "op", "--client")
	// It trusts the cluster's CA; the cluster does not trust its own.
	foreign := []string{"--tls-cert", filepath.Join(other, "op.pem"), "--tls-key", filepath.Join(other, "op-key.pem"),
		"--tls-ca", filepath.Join(dir, "ca.pem"), "--token-file", token}
	for name, creds := range map[string][]string{
		"a certificate from another CA": foreign,
		"no client certificate":         {"--tls-ca", filepath.Join(dir, "ca.pem"), "--token-file", token},
	} {
		r, err := runCLI(append([]string{"status", "--server", n1.url}, creds...)...)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 1 || !strings.Contains(r.stderr, "tls") {
			t.Errorf("status with %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}

	// Still three voters, nothing else added.
	c = tlsStatus(t, n1, 3, op)
	if v := c.voters(); !slices.Equal(v, []string{"n1", "n2", "n3"}) || len(c.Servers) != 3 {
		t.Fatalf("after the refusals: servers %+v", c.Servers)
	}
}
