package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

// clientCommands are the commands that talk to a server.
var clientCommands = []string{"join", "remove", "demote", "clear-tombstone", "status"}

// Every client command has the same --server default and says which
// variable each of its flags falls back to.
func TestClientFlagsSameEverywhere(t *testing.T) {
	root := newRoot()
	for _, name := range clientCommands {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("no command %s: %v", name, err)
		}
		for flag, env := range map[string]string{"server": envServer, "token-file": envTokenFile,
			"tls-cert": envTLSCert, "tls-key": envTLSKey, "tls-ca": envTLSCA} {
			f := cmd.Flags().Lookup(flag)
			if f == nil {
				t.Fatalf("%s has no --%s", name, flag)
			}
			if !strings.HasSuffix(f.Usage, "(env "+env+")") {
				t.Errorf("%s --%s: usage %q does not name %s", name, flag, f.Usage, env)
			}
		}
		if def := cmd.Flags().Lookup("server").DefValue; def != defaultServer {
			t.Errorf("%s --server defaults to %q, want %q", name, def, defaultServer)
		}
	}
	_, out, _ := runCmd(t, "", "join", "--help")
	if !strings.Contains(out, "(env ADMITD_SERVER) (default \"http://127.0.0.1:7400\")") {
		t.Errorf("join --help:\n%s", out)
	}
}

// ADMITD_SERVER is used when --server is not given; --server wins.
func TestServerFromEnvironment(t *testing.T) {
	fake, url := startFake(t)
	t.Setenv(envServer, url)
	if code, out, errOut := runCmd(t, "", "status"); code != exitOK || !strings.Contains(out, "node n1") {
		t.Fatalf("status with ADMITD_SERVER: exit %d\n%s%s", code, out, errOut)
	}
	if seen, _ := fake.requests(); len(seen) != 2 {
		t.Fatalf("the server named by ADMITD_SERVER saw %v", seen)
	}

	other, otherURL := startFake(t)
	if code, _, errOut := runCmd(t, "", "status", "--server", otherURL); code != exitOK {
		t.Fatalf("--server over ADMITD_SERVER: exit %d %s", code, errOut)
	}
	if seen, _ := other.requests(); len(seen) != 2 {
		t.Fatalf("--server was not used: %v", seen)
	}
	if seen, _ := fake.requests(); len(seen) != 2 {
		t.Fatalf("ADMITD_SERVER was used over --server: %v", seen)
	}

	// An empty variable is no variable: the default is used.
	t.Setenv(envServer, "")
	cmd := newStatusCmd()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(cmd); err != nil || cmd.Flags().Lookup("server").Value.String() != defaultServer {
		t.Fatalf("empty ADMITD_SERVER: %v, server %s", err, cmd.Flags().Lookup("server").Value)
	}
}

// A bad value in the environment names the variable.
func TestBadServerFromEnvironment(t *testing.T) {
	t.Setenv(envServer, "ftp://127.0.0.1:7400")
	for _, args := range [][]string{
		{"status"},
		{"remove", "--id", "n2"},
		{"join", "--id", "n4", "--raft-addr", "127.0.0.1:7431", "--timeout", "2s"},
	} {
		code, _, errOut := runCmd(t, "", args...)
		if code != exitUsage || !strings.Contains(errOut, "--server (from ADMITD_SERVER): ") || !strings.Contains(errOut, "not http or https") {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
}

// ADMITD_TOKEN_FILE sends the token; --token-file wins; a variable naming
// a missing file says so.
func TestTokenFromEnvironment(t *testing.T) {
	fake, url := startFake(t)
	t.Setenv(envServer, url)
	t.Setenv(envTokenFile, writeTemp(t, "from-env\n"))
	if code, _, errOut := runCmd(t, "", "status"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "status", "--token-file", writeTemp(t, "from-flag\n")); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, auth := fake.requests(); strings.Join(auth, ",") != "Bearer from-env,Bearer from-env,Bearer from-flag,Bearer from-flag" {
		t.Fatalf("Authorization headers %q", auth)
	}
	t.Setenv(envTokenFile, filepath.Join(t.TempDir(), "none"))
	code, _, errOut := runCmd(t, "", "clear-tombstone", "--id", "n2")
	if code != exitError || !strings.Contains(errOut, "--token-file (from ADMITD_TOKEN_FILE): token file: ") {
		t.Fatalf("missing token file from the environment: exit %d: %s", code, errOut)
	}
}

// The TLS variables make a client command present its certificate to a
// server that requires one.
func TestTLSFromEnvironment(t *testing.T) {
	ca := tlstest.NewCA(t)
	srvPair := ca.Issue(t, "server", nil, nil)
	cfg, err := tlsconfig.Server(srvPair.Cert, srvPair.Key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "n2", "tombstoned": false})
	}))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()
	operator := ca.Issue(t, "operator", nil, nil)

	t.Setenv(envServer, srv.URL)
	t.Setenv(envTLSCA, ca.File)
	code, _, errOut := runCmd(t, "", "clear-tombstone", "--id", "n2")
	if code != exitError || errOut == "" {
		t.Fatalf("without a client certificate: exit %d %s", code, errOut)
	}
	t.Setenv(envTLSCert, operator.Cert)
	code, _, errOut = runCmd(t, "", "clear-tombstone", "--id", "n2")
	if code != exitUsage || !strings.Contains(errOut, "--tls-cert (from ADMITD_TLS_CERT) and --tls-key go together") {
		t.Fatalf("a certificate without its key: exit %d %s", code, errOut)
	}
	t.Setenv(envTLSKey, operator.Key)
	code, out, errOut := runCmd(t, "", "clear-tombstone", "--id", "n2")
	if code != exitOK || !strings.Contains(out, "tombstone for n2 cleared") {
		t.Fatalf("with ADMITD_TLS_*: exit %d %s %s", code, out, errOut)
	}
	// A flag wins over its variable: a CA that does not sign the server.
	other := tlstest.NewCA(t)
	code, _, errOut = runCmd(t, "", "clear-tombstone", "--id", "n2", "--tls-ca", other.File)
	if code != exitError || !strings.Contains(errOut, "certificate") {
		t.Fatalf("--tls-ca over ADMITD_TLS_CA: exit %d %s", code, errOut)
	}
}
