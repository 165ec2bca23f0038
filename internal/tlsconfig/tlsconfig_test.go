package tlsconfig_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/admitd/admitd/internal/tlsconfig"
	"github.com/admitd/admitd/internal/tlsconfig/tlstest"
)

func TestServerRequiresClientCertsWithCA(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue(t, "n1", []string{tlstest.SPIFFE("n1")}, nil)
	plain, err := tlsconfig.Server(p.Cert, p.Key, "")
	if err != nil || plain.ClientAuth != tls.NoClientCert || plain.MinVersion != tls.VersionTLS12 {
		t.Fatalf("without CA: %+v %v", plain, err)
	}
	mtls, err := tlsconfig.Server(p.Cert, p.Key, ca.File)
	if err != nil || mtls.ClientAuth != tls.RequireAndVerifyClientCert || mtls.ClientCAs == nil {
		t.Fatalf("with CA: %v", err)
	}
}

func TestClientConfig(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue(t, "n1", nil, []string{"n1"})
	c, err := tlsconfig.Client(p.Cert, p.Key, ca.File)
	if err != nil || len(c.Certificates) != 1 || c.RootCAs == nil || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("client: %v", err)
	}
	c, err = tlsconfig.Client("", "", ca.File)
	if err != nil || len(c.Certificates) != 0 || c.RootCAs == nil {
		t.Fatalf("CA only: %v", err)
	}
}

func TestBadInputsAreErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	p := ca.Issue(t, "n1", nil, nil)
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, f := range map[string]func() error{
		"server without key":    func() error { _, err := tlsconfig.Server(p.Cert, "", ""); return err },
		"server missing file":   func() error { _, err := tlsconfig.Server("nope.pem", p.Key, ""); return err },
		"server CA not PEM":     func() error { _, err := tlsconfig.Server(p.Cert, p.Key, notPEM); return err },
		"server CA missing":     func() error { _, err := tlsconfig.Server(p.Cert, p.Key, "nope.pem"); return err },
		"client cert alone":     func() error { _, err := tlsconfig.Client(p.Cert, "", ""); return err },
		"client key mismatched": func() error { _, err := tlsconfig.Client(p.Cert, notPEM, ""); return err },
		"client CA not PEM":     func() error { _, err := tlsconfig.Client("", "", notPEM); return err },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
