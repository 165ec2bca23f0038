package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/client"
	"github.com/admitd/admitd/internal/server"
	"github.com/admitd/admitd/internal/tlsconfig"
)

// clientFlags are the credentials a command presents to a server.
type clientFlags struct {
	tokenFile, cert, key, ca string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the cluster's bearer token")
	fl.StringVar(&f.ca, "tls-ca", "", "CA certificate (PEM) that signs the servers (default: system roots)")
	fl.StringVar(&f.cert, "tls-cert", "", "client certificate (PEM) for servers that require one")
	fl.StringVar(&f.key, "tls-key", "", "key (PEM) of --tls-cert")
}

// client builds an API client; unreadable files are errors, not usage.
func (f clientFlags) client(timeout time.Duration) (*client.Client, error) {
	c := client.New(timeout)
	if f.tokenFile != "" {
		token, err := server.ReadToken(f.tokenFile)
		if err != nil {
			return nil, err
		}
		c.WithToken(token)
	}
	if tlsconfig.Enabled(f.cert, f.key, f.ca) {
		cfg, err := tlsconfig.Client(f.cert, f.key, f.ca)
		if err != nil {
			return nil, err
		}
		c.WithTLS(cfg)
	}
	return c, nil
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
}
