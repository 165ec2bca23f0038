package facts

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

// tlsStateServer serves goodState(id) over HTTPS with a certificate from ca.
func tlsStateServer(t *testing.T, ca *tlstest.CA, id string, uris, dnsNames []string) string {
	t.Helper()
	pair := ca.Issue(t, "server-"+id, uris, dnsNames)
	cfg, err := tlsconfig.Server(pair.Cert, pair.Key, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(jsonHandler(http.StatusOK, goodState(id)))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func tlsCollect(t *testing.T, ca *tlstest.CA) CollectConfig {
	t.Helper()
	cfg, err := tlsconfig.Client("", "", ca.File)
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.HTTPClient = NewHTTPClient(cfg)
	c.TLSRequired = true
	return c
}

func TestGatherRecordsCertificateIdentity(t *testing.T) {
	ca := tlstest.NewCA(t)
	url := tlsStateServer(t, ca, "n4", []string{tlstest.SPIFFE("n4")}, []string{"n4.example"})
	doc := Gather(t.Context(), tlsCollect(t, ca), candidate(raftServer(t, "n4"), url), soloView())
	got := doc.Reachability.API.TLS
	if !doc.Reachability.API.OK || !got.Enabled || !got.Verified || got.Error != "" {
		t.Fatalf("tls %+v, api %+v", got, doc.Reachability.API)
	}
	if !slices.Equal(got.URIs, []string{"spiffe://test/admitd/n4"}) || !slices.Equal(got.DNSNames, []string{"n4.example"}) {
		t.Fatalf("names %+v", got)
	}
	if !doc.InitState.Collected || doc.InitState.NodeID != "n4" {
		t.Fatalf("init_state %+v", doc.InitState)
	}
}

func TestGatherUntrustedCertificateIsUnverified(t *testing.T) {
	url := tlsStateServer(t, tlstest.NewCA(t), "n4", []string{tlstest.SPIFFE("n4")}, nil)
	// A real raft server answers, so the certificate alone is what leaves
	// init_state uncollected.
	doc := Gather(t.Context(), tlsCollect(t, tlstest.NewCA(t)), candidate(raftServer(t, "n4"), url), soloView())
	got := doc.Reachability.API.TLS
	if doc.Reachability.API.OK || !got.Enabled || got.Verified || len(got.URIs) != 0 || !strings.Contains(got.Error, "certificate") {
		t.Fatalf("tls %+v", got)
	}
	if !doc.Reachability.RaftRPC.OK {
		t.Fatalf("raft rpc %+v", doc.Reachability.RaftRPC)
	}
	assertUncollected(t, "init_state", doc.InitState)
	if !strings.Contains(doc.InitState.Error, "certificate") {
		t.Fatalf("init state error %q, want the certificate's", doc.InitState.Error)
	}
}

func TestGatherPlainHTTPWhenTLSRequired(t *testing.T) {
	srv := newStateServer(t, jsonHandler(http.StatusOK, goodState("n4")))
	doc := Gather(t.Context(), tlsCollect(t, tlstest.NewCA(t)), candidate(raftListener(t), srv.URL), soloView())
	got := doc.Reachability.API.TLS
	if !got.Enabled || got.Verified || !strings.Contains(got.Error, "https") {
		t.Fatalf("tls %+v", got)
	}
}

func TestGatherWithoutTLSSaysDisabled(t *testing.T) {
	srv := newStateServer(t, jsonHandler(http.StatusOK, goodState("n4")))
	doc := Gather(t.Context(), testConfig(), candidate(raftListener(t), srv.URL), soloView())
	raw, _ := json.Marshal(doc.Reachability.API.TLS)
	if want := `{"enabled":false,"verified":false,"uris":[],"dns_names":[],"error":""}`; string(raw) != want {
		t.Fatalf("tls %s, want %s", raw, want)
	}
}
