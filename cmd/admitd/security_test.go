package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeRefusesBadSecurityFlags(t *testing.T) {
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"empty token file":   {"--token-file", writeTemp(t, " \n")},
		"missing token file": {"--token-file", filepath.Join(dir, "none")},
		"CA without cert":    {"--tls-ca", ca.File},
		"cert without key":   {"--tls-cert", ca.File},
	} {
		args = append([]string{"serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, args...)
		if code, _, errOut := runCmd(t, "", args...); code != exitError || !strings.Contains(errOut, "admitd:") {
			t.Errorf("%s: exit %d (%s)", name, code, errOut)
		}
	}
}

// The client commands present the token and a client certificate to a
// server that requires both.
func TestClientCommandsSendTokenOverMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	srvPair := ca.Issue(t, "server", nil, nil)
	cfg, err := tlsconfig.Server(srvPair.Cert, srvPair.Key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"UNAUTHENTICATED","message":"no token"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"decision_id": "d1", "allowed": true, "enforced": true, "phase": "remove",
			"candidate": map[string]any{"id": "n2"}, "stages": []any{}, "removed": map[string]any{"suffrage": "voter", "index": 7}, "decided_by": "n1"})
	}))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()
	client := ca.Issue(t, "operator", nil, nil)
	token := writeTemp(t, "tok\n")

	creds := []string{"--tls-ca", ca.File, "--tls-cert", client.Cert, "--tls-key", client.Key}
	code, out, errOut := runCmd(t, "", append([]string{"remove", "--server", srv.URL, "--id", "n2", "--token-file", token}, creds...)...)
	if code != exitOK || !strings.Contains(out, "n2") || !strings.Contains(out, "removed") {
		t.Fatalf("remove: exit %d %s %s", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "", append([]string{"clear-tombstone", "--server", srv.URL, "--id", "n2"}, creds...)...)
	if code != exitError || !strings.Contains(errOut, "UNAUTHENTICATED") {
		t.Fatalf("without token: exit %d %s", code, errOut)
	}
	code, _, errOut = runCmd(t, "", "remove", "--server", srv.URL, "--id", "n2", "--token-file", token, "--tls-ca", ca.File)
	if code != exitError || errOut == "" {
		t.Fatalf("without a client certificate: exit %d %s", code, errOut)
	}
}
