package daemon

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/tlsconfig"
)

// TLSFiles are PEM files: the node's certificate and key, and the CA that
// signs every node (with it, callers must present a certificate too).
type TLSFiles struct {
	Cert, Key, CA string
}

// readTimeout bounds reading a whole request, so a client that declares a
// body and sends it slowly cannot hold a connection open indefinitely.
const readTimeout = 30 * time.Second

// security is what the TLS files load into; zero means plain HTTP.
type security struct {
	server *tls.Config // the API listener
	client *tls.Config // every call to another node
}

func loadSecurity(files TLSFiles) (security, error) {
	if files.Cert == "" && files.Key == "" {
		if files.CA != "" {
			return security{}, errors.New("tls: --tls-ca needs --tls-cert and --tls-key: a node can only require client certificates when it serves TLS")
		}
		return security{}, nil
	}
	srv, err := tlsconfig.Server(files.Cert, files.Key, files.CA)
	if err != nil {
		return security{}, err
	}
	cl, err := tlsconfig.Client(files.Cert, files.Key, files.CA)
	if err != nil {
		return security{}, err
	}
	return security{server: srv, client: cl}, nil
}

func (s security) scheme() string {
	if s.server != nil {
		return "https"
	}
	return "http"
}

// listen wraps the API listener in TLS when configured.
func (s security) listen(ln net.Listener) net.Listener {
	if s.server == nil {
		return ln
	}
	return tls.NewListener(ln, s.server)
}

// collect makes the collectors call candidates and members over TLS and
// record the candidate's certificate identity.
func (s security) collect(c facts.CollectConfig) facts.CollectConfig {
	if s.client != nil {
		c.HTTPClient = facts.NewHTTPClient(s.client)
		c.TLSRequired = true
	}
	return c
}

// warnIfOpen says loudly what an unprotected API lets anyone do.
func warnIfOpen(log hclog.Logger, cfg Config, s security) {
	if cfg.Token == "" {
		log.Warn("NO API TOKEN: anyone who can reach the HTTP API can admit and remove members and read decisions; start with --token-file to require a bearer token")
	}
	if s.server == nil {
		log.Warn("NO TLS: the API is plain HTTP, so tokens and facts travel in clear text and candidates prove no identity; start with --tls-cert, --tls-key and --tls-ca")
	} else if s.server.ClientAuth != tls.RequireAndVerifyClientCert {
		log.Warn("TLS without --tls-ca: callers are not asked for a client certificate")
	}
}

// joinClient asks the cluster for admission with this node's credentials.
func joinClient(cfg Config) *client.Client {
	return client.New(30 * time.Second).WithTLS(cfg.clientTLS).WithToken(cfg.Token)
}
