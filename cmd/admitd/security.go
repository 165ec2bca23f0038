package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/internal/tlsconfig"
)

// clientFlags are the server a command talks to and the credentials it
// presents; each falls back to an environment variable.
type clientFlags struct {
	server                   string
	tokenFile, cert, key, ca string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", defaultServer, "API URL of any node of the cluster")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the cluster's bearer token")
	fl.StringVar(&f.ca, "tls-ca", "", "CA certificate (PEM) that signs the servers (default: system roots)")
	fl.StringVar(&f.cert, "tls-cert", "", "client certificate (PEM) for servers that require one")
	fl.StringVar(&f.key, "tls-key", "", "key (PEM) of --tls-cert")
	bindEnv(cmd, "server", envServer)
	bindEnv(cmd, "token-file", envTokenFile)
	bindEnv(cmd, "tls-ca", envTLSCA)
	bindEnv(cmd, "tls-cert", envTLSCert)
	bindEnv(cmd, "tls-key", envTLSKey)
	fileFlags(cmd, nil, "token-file", "tls-ca", "tls-cert", "tls-key")
}

// prepare fills the flags not given from the environment and checks the
// server URL and the TLS pair; call it first, before any other check, so
// every message names where a value came from.
func (f *clientFlags) prepare(cmd *cobra.Command) error {
	if err := applyEnv(cmd); err != nil {
		return err
	}
	if f.server == "" {
		return usageErr(fmt.Errorf("%s is required: the API URL of any node, such as %s", flagRef(cmd, "server"), defaultServer))
	}
	if err := facts.ValidateHTTPURL(f.server); err != nil {
		return usageErr(fmt.Errorf("%s: %v; want http://HOST:PORT or https://HOST:PORT", flagRef(cmd, "server"), err))
	}
	if (f.cert == "") != (f.key == "") {
		return usageErr(fmt.Errorf("%s and %s go together", flagRef(cmd, "tls-cert"), flagRef(cmd, "tls-key")))
	}
	return nil
}

// client builds an API client; unreadable files are errors, not usage.
func (f clientFlags) client(cmd *cobra.Command, timeout time.Duration) (*client.Client, error) {
	c := client.New(timeout)
	if f.tokenFile != "" {
		token, err := server.ReadToken(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", flagRef(cmd, "token-file"), err)
		}
		c.WithToken(token)
	}
	if tlsconfig.Enabled(f.cert, f.key, f.ca) {
		cfg, err := tlsconfig.Client(f.cert, f.key, f.ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", tlsRefs(cmd), err)
		}
		c.WithTLS(cfg)
	}
	return c, nil
}

// tlsRefs names the TLS flags that were set, for a message about them.
func tlsRefs(cmd *cobra.Command) string {
	var refs []string
	for _, n := range []string{"tls-cert", "tls-key", "tls-ca"} {
		if f := cmd.Flags().Lookup(n); f != nil && f.Value.String() != "" {
			refs = append(refs, flagRef(cmd, n))
		}
	}
	return strings.Join(refs, ", ")
}

// registerSecurity adds serve's access-control flags.
func registerSecurity(cmd *cobra.Command, f *serveFlags) {
	fl := cmd.Flags()
	c := &f.cfg
	fl.StringVar(&f.token, "token-file", "", "file holding the cluster's bearer token, required on guarded endpoints and sent when joining (all nodes share it)")
	fl.StringVar(&c.TLS.Cert, "tls-cert", "", "this node's certificate (PEM): serve HTTPS and present it to other nodes")
	fl.StringVar(&c.TLS.Key, "tls-key", "", "key (PEM) of --tls-cert")
	fl.StringVar(&c.TLS.CA, "tls-ca", "", "CA certificate (PEM) that signs every node; callers must then present a certificate it signed")
	fl.Float64Var(&c.AdmissionRate, "admission-rate", 5, "admission requests per second this node accepts (0: unlimited)")
	fl.IntVar(&c.AdmissionBurst, "admission-burst", 10, "admission requests accepted at once above the rate")
	fileFlags(cmd, nil, "token-file", "tls-cert", "tls-key", "tls-ca")
}
