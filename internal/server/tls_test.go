package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

// decisionFacts is the part of a decision's facts these tests read.
type decisionFacts struct {
	admission.Decision
	Facts struct {
		Reachability struct {
			API struct {
				TLS struct {
					Enabled, Verified bool
					URIs              []string `json:"uris"`
				} `json:"tls"`
			} `json:"api"`
		} `json:"reachability"`
	} `json:"facts"`
}

func TestMutualTLSAdmission(t *testing.T) {
	ca := tlstest.NewCA(t)
	leader := startNodeWith(t, "n1", true, nodeOpts{ca: ca, token: testToken})
	fresh := startNodeWith(t, "n2", false, nodeOpts{ca: ca, token: testToken})
	if !strings.HasPrefix(fresh.candidate().APIURL, "https://") {
		t.Fatalf("api url %s", fresh.candidate().APIURL)
	}
	operator := ca.Issue(t, "operator", nil, nil)
	cl := httpsClient(t, ca, &operator)
	r := mustSend(t, cl, http.MethodPost, leader.http.URL+"/v1/admissions",
		strings.NewReader(admissionBody(fresh.candidate(), false)), bearer(testToken))
	var d decisionFacts
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || d.Applied == nil {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	tls := d.Facts.Reachability.API.TLS
	if !tls.Enabled || !tls.Verified || !slices.Equal(tls.URIs, []string{"spiffe://test/admitd/n2"}) {
		t.Fatalf("tls facts %+v", tls)
	}

	// The follower forwards over mTLS with the token, and the leader checks
	// the follower's health over mTLS too: a failed check would deny.
	waitKnowsLeader(t, fresh, "n1")
	third := startNodeWith(t, "n3", false, nodeOpts{ca: ca, token: testToken})
	r = mustSend(t, cl, http.MethodPost, fresh.http.URL+"/v1/admissions",
		strings.NewReader(admissionBody(third.candidate(), true)), bearer(testToken))
	if r.status != http.StatusOK || r.header.Get("X-Admitd-Forwarded-To") != "n1" {
		t.Fatalf("forwarded admission: %d %s", r.status, r.body)
	}
}

func TestClientWithoutCertificateRefusedByTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	leader := startNodeWith(t, "n1", true, nodeOpts{ca: ca})
	_, err := send(httpsClient(t, ca, nil), http.MethodGet, leader.http.URL+"/v1/state", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate got through: %v", err)
	}
	other := tlstest.NewCA(t).Issue(t, "stranger", nil, nil)
	if _, err := send(httpsClient(t, ca, &other), http.MethodGet, leader.http.URL+"/v1/state", nil, nil); err == nil {
		t.Fatal("a certificate from another CA got through")
	}
}

func TestCandidateCertificateNamingAnotherIDRefused(t *testing.T) {
	ca := tlstest.NewCA(t)
	leader := startNodeWith(t, "n1", true, nodeOpts{ca: ca})
	impostor := startNodeWith(t, "n2", false, nodeOpts{ca: ca, certID: "n7"})
	operator := ca.Issue(t, "operator", nil, nil)
	r := mustSend(t, httpsClient(t, ca, &operator), http.MethodPost, leader.http.URL+"/v1/admissions",
		strings.NewReader(admissionBody(impostor.candidate(), false)), nil)
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	if d.StoppedAt != "reachability" || !strings.Contains(d.Reason, "IDENTITY_MISMATCH") || !d.Permanent || d.Applied != nil {
		t.Fatalf("decision: stopped at %s, permanent %v: %s", d.StoppedAt, d.Permanent, d.Reason)
	}
}

// A candidate serving plain HTTP to a TLS cluster proves no identity.
func TestPlainHTTPCandidateRefusedByTLSCluster(t *testing.T) {
	ca := tlstest.NewCA(t)
	leader := startNodeWith(t, "n1", true, nodeOpts{ca: ca})
	plain := startNodeWith(t, "n2", false, nodeOpts{})
	operator := ca.Issue(t, "operator", nil, nil)
	r := mustSend(t, httpsClient(t, ca, &operator), http.MethodPost, leader.http.URL+"/v1/admissions",
		strings.NewReader(admissionBody(plain.candidate(), true)), nil)
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden || !strings.Contains(d.Reason, "IDENTITY_MISMATCH") {
		t.Fatalf("admission: %d %s", r.status, d.Reason)
	}
}
