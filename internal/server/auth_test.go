package server_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/server"
)

const testToken = "s3cret-token"

// guarded lists every endpoint that needs the token.
var guarded = []struct{ method, path, body string }{
	{http.MethodPost, "/v1/admissions", `{"candidate": {"id": "n9", "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9"}}`},
	{http.MethodDelete, "/v1/members/n9", ""},
	{http.MethodDelete, "/v1/tombstones/n9", ""},
	{http.MethodGet, "/v1/decisions", ""},
	{http.MethodGet, "/v1/decisions/x", ""},
	{http.MethodPost, "/v1/policies/reload", ""},
	{http.MethodGet, "/v1/admissions/x", ""},
	{http.MethodPost, server.AdmittedPath, `{"cluster_id": "c", "leader_id": "n1", "decision_id": "d"}`},
}

func TestGuardedEndpointsNeedTheToken(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{token: testToken})
	for _, e := range guarded {
		for name, h := range map[string]http.Header{
			"no header":        nil,
			"wrong token":      bearer("s3cret-tokeN"),
			"token prefix":     bearer("s3cret"),
			"basic scheme":     {"Authorization": {"Basic " + testToken}},
			"no scheme":        {"Authorization": {testToken}},
			"empty bearer":     bearer(""),
			"token with extra": bearer(testToken + "x"),
		} {
			r := mustSend(t, testClient, e.method, n.http.URL+e.path, strings.NewReader(e.body), h)
			wantError(t, r, http.StatusUnauthorized, "UNAUTHENTICATED")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s (%s): WWW-Authenticate %q", e.method, e.path, name, r.header.Get("WWW-Authenticate"))
			}
		}
	}
}

func TestRightTokenPasses(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{token: testToken})
	for _, h := range []http.Header{bearer(testToken), {"Authorization": {"bearer " + testToken}}} {
		r := mustSend(t, testClient, http.MethodGet, n.http.URL+"/v1/decisions", nil, h)
		if r.status != http.StatusOK {
			t.Fatalf("with the token: %d %s", r.status, r.body)
		}
	}
	// Past the guard, the gate decides: here, on an unknown member.
	r := mustSend(t, testClient, http.MethodDelete, n.http.URL+"/v1/members/n9", nil, bearer(testToken))
	wantDecision(t, r, http.StatusForbidden, "NOT_A_MEMBER")
}

// Reading a node's state, health and topology stays open: candidates and
// peers call /v1/state without a token.
func TestOpenEndpointsNeedNoToken(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{token: testToken})
	for _, path := range []string{"/v1/state", "/v1/cluster", "/healthz", "/readyz", "/metrics"} {
		if r := do(t, http.MethodGet, n.http.URL+path, nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

// A follower checks the token and passes it on; the leader checks it again.
func TestTokenForwardedToLeader(t *testing.T) {
	leader := startNodeWith(t, "n1", true, nodeOpts{token: testToken})
	follower := startNodeWith(t, "n2", false, nodeOpts{token: testToken})
	r := mustSend(t, testClient, http.MethodPost, leader.http.URL+"/v1/admissions",
		strings.NewReader(admissionBody(follower.candidate(), false)), bearer(testToken))
	if r.status != http.StatusOK {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	waitKnowsLeader(t, follower, "n1")
	wantError(t, do(t, http.MethodDelete, follower.http.URL+"/v1/tombstones/n9", nil), http.StatusUnauthorized, "UNAUTHENTICATED")
	r = mustSend(t, testClient, http.MethodDelete, follower.http.URL+"/v1/tombstones/n9", nil, bearer(testToken))
	if r.status != http.StatusOK || r.header.Get("X-Admitd-Forwarded-To") != "n1" {
		t.Fatalf("forwarded clear: %d %v %s", r.status, r.header, r.body)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := writeFile(p, content); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := server.ReadToken(write("ok", "  abc.DEF-123\n")); err != nil || tok != "abc.DEF-123" {
		t.Fatalf("got %q, %v", tok, err)
	}
	for name, content := range map[string]string{"empty": "", "blank": " \n\t\n", "inner space": "a b", "newline": "a\nb", "non-ASCII": "tökén"} {
		if _, err := server.ReadToken(write(strings.ReplaceAll(name, " ", "_"), content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := server.ReadToken(dir + "/missing"); err == nil {
		t.Error("missing file accepted")
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
