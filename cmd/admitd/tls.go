package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/tlsconfig"
)

const day = 24 * time.Hour

// File names `admitd tls` writes: the ones the TLS flags of serve and of
// the client commands are shown with.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
)

// defaultNodeIPs and defaultNodeDNS are a node certificate's addresses
// when neither --ip nor --dns is given: a cluster on one machine.
var (
	defaultNodeIPs = []string{"127.0.0.1"}
	defaultNodeDNS = []string{"localhost"}
)

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create a CA and the certificates of nodes and operators (mTLS)",
		Long: `Create the certificates a cluster needs to run with mutual TLS: one CA,
a certificate for each node and one for each operator or controller that
calls the API.

A node certificate names the node's id (SAN URI
spiffe://<trust domain>/admitd/<id>), which the reachability stage requires
of every candidate when TLS is on (IDENTITY_MISMATCH otherwise), and the
addresses the node is reached at (IP or DNS SANs). It is good for both
server and client authentication: a node serves the API with it and
presents it when it calls another node. A --client certificate only
authenticates a caller and cannot serve the API.

Keys are ECDSA P-256, written with mode 0600; certificates with 0644.
Existing files are never replaced without --force. Keep ca-key.pem off
the nodes: whoever holds it can mint any node's identity.

Exit status: 0, 1 error, 2 usage.`,
		Example: `  admitd tls ca create
  admitd tls cert create --id n1
  admitd tls cert create --id op --client
  admitd serve --id n1 --bootstrap --tls-cert n1.pem --tls-key n1-key.pem --tls-ca ca.pem`,
	}
	cmd.AddCommand(newTLSCACmd(), newTLSCertCmd())
	return cmd
}

func newTLSCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the certificate authority that signs every node and operator",
		Long: `Manage the certificate authority that signs every node and operator
certificate. Every node is started with it as --tls-ca, and then accepts
only callers whose certificate it signed.

Exit status: 0, 1 error, 2 usage.`,
		Example: `  admitd tls ca create --dir tls`,
	}
	cmd.AddCommand(newTLSCACreateCmd())
	return cmd
}

func newTLSCACreateCmd() *cobra.Command {
	var dir, name string
	var days int
	var force bool
	cmd := &cobra.Command{
		Use:   "create [--dir DIR] [--days N] [--name NAME] [--force]",
		Short: "Create a self-signed CA: ca.pem and ca-key.pem",
		Long: `Create a self-signed certificate authority (ECDSA P-256) that may sign
end-entity certificates only, and write its certificate to DIR/ca.pem
(mode 0644: give it to every node and operator as --tls-ca) and its key
to DIR/ca-key.pem (mode 0600: needed only to create certificates; keep it
off the nodes). DIR is created when missing. Existing files are kept, and
the command fails, unless --force is given.

Exit status: 0, 1 error (a file exists, one cannot be written), 2 usage.`,
		Example: `  # ca.pem and ca-key.pem in the current directory, valid for 5 years
  admitd tls ca create

  # in ./tls, for one year, with a name that says which cluster
  admitd tls ca create --dir tls --days 365 --name "admitd prod CA"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 {
				return usageErr(fmt.Errorf("--days must be at least 1, got %d", days))
			}
			if strings.TrimSpace(name) == "" {
				return usageErr(errors.New("--name must not be empty"))
			}
			b, err := tlsconfig.CreateCA(tlsconfig.CAOptions{Name: name, Validity: time.Duration(days) * day})
			if err != nil {
				return err
			}
			cert, key := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
			if err := b.Write(cert, key, force); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s: CA %q, valid until %s\n", cert, name, until(b))
			fmt.Fprintf(out, "wrote %s: its key (mode 0600); keep it off the nodes\n", key)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", ".", "directory to write ca.pem and ca-key.pem to")
	fl.IntVar(&days, "days", int(tlsconfig.DefaultCAValidity/day), "days the CA is valid")
	fl.StringVar(&name, "name", tlsconfig.DefaultCAName, "the CA's subject common name")
	fl.BoolVar(&force, "force", false, "replace existing files")
	dirFlags(cmd, "dir")
	noFileCompletion(cmd)
	return cmd
}

func newTLSCertCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Manage node and operator certificates signed by the CA",
		Long: `Manage the certificates of nodes (serve --tls-cert) and of operators
and controllers (the client commands' --tls-cert), signed by the CA that
admitd tls ca create made.

Exit status: 0, 1 error, 2 usage.`,
		Example: `  admitd tls cert create --dir tls --id n1 --ip 10.0.0.1`,
	}
	cmd.AddCommand(newTLSCertCreateCmd())
	return cmd
}

// certFlags are the flags of `admitd tls cert create`.
type certFlags struct {
	id, dir, ca, caKey, trustDomain string
	ips, dns                        []string
	client, force                   bool
	days                            int
}

func newTLSCertCreateCmd() *cobra.Command {
	var f certFlags
	cmd := &cobra.Command{
		Use:   "create --id ID [--ip IP ...] [--dns NAME ...] [--client] [--ca FILE --ca-key FILE] [--dir DIR] [--days N] [--force]",
		Short: "Issue a node certificate, or with --client an operator's: ID.pem and ID-key.pem",
		Long: `Issue a certificate signed by the CA and write it to DIR/ID.pem (mode
0644) and its key to DIR/ID-key.pem (mode 0600).

A node certificate (the default) is what serve takes as --tls-cert and
--tls-key. It names the node with the SAN URI
spiffe://<trust domain>/admitd/ID, the proof of identity the reachability
stage asks of a candidate (IDENTITY_MISMATCH without it, so ID must be
the node's --id), and carries an IP SAN for each --ip and a DNS SAN for
each --dns: every address the node's API is reached at, as written in its
--api-url and in the --server and --join URLs that name it. Without --ip
and --dns it is issued for 127.0.0.1 and localhost. A DNS name equal to
ID names the node too, for clients that match DNS names only. It is good
for server and client authentication, since a node presents it when it
calls another node.

With --client the certificate is an operator's or a controller's, for the
--tls-cert of join, status, remove, ...: client authentication only, SAN
URI spiffe://<trust domain>/admitd-client/ID, no addresses. It cannot
serve the API, so it never passes for a node.

The CA is read from --ca and --ca-key (default DIR/ca.pem and
DIR/ca-key.pem). A certificate may not outlive its CA. Existing files are
kept, and the command fails, unless --force is given.

Exit status: 0, 1 error (a file exists, the CA does not load), 2 usage.`,
		Example: `  # three nodes on one machine and an operator, beside ca.pem
  admitd tls cert create --id n1
  admitd tls cert create --id n2
  admitd tls cert create --id n3
  admitd tls cert create --id op --client

  # a node reached at 10.0.0.11 and n2.admitd.internal, CA files in ./tls
  admitd tls cert create --dir tls --id n2 --ip 10.0.0.11 --dns n2.admitd.internal`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "", "the node's id (its serve --id), or the operator's name with --client; also the file names")
	fl.StringSliceVar(&f.ips, "ip", nil, "an IP address the node is reached at (repeat, or separate with commas)")
	fl.StringSliceVar(&f.dns, "dns", nil, "a DNS name the node is reached at (repeat, or separate with commas)")
	fl.BoolVar(&f.client, "client", false, "an operator's or controller's certificate: client authentication only")
	fl.StringVar(&f.ca, "ca", "", "the CA certificate (default DIR/ca.pem)")
	fl.StringVar(&f.caKey, "ca-key", "", "the CA key (default DIR/ca-key.pem)")
	fl.StringVar(&f.dir, "dir", ".", "directory to write ID.pem and ID-key.pem to")
	fl.IntVar(&f.days, "days", int(tlsconfig.DefaultValidity/day), "days the certificate is valid")
	fl.StringVar(&f.trustDomain, "trust-domain", tlsconfig.DefaultTrustDomain, "trust domain of the SPIFFE URI (the policies accept any)")
	fl.BoolVar(&f.force, "force", false, "replace existing files")
	fileFlags(cmd, []string{"pem"}, "ca", "ca-key")
	dirFlags(cmd, "dir")
	noFileCompletion(cmd)
	return cmd
}

// check turns the flags into the certificate's addresses; every problem
// is a usage error naming its flag.
func (f *certFlags) check() ([]net.IP, []string, error) {
	if f.id == "" {
		return nil, nil, usageErr(errors.New("--id is required: the node's --id, or with --client the operator's name"))
	}
	if err := facts.ValidateID(f.id); err != nil {
		return nil, nil, usageErr(fmt.Errorf("--id: %v", err))
	}
	if err := tlsconfig.ValidateCertID(f.id); err != nil {
		return nil, nil, usageErr(fmt.Errorf("--id: %v", err))
	}
	if err := tlsconfig.ValidateTrustDomain(f.trustDomain); err != nil {
		return nil, nil, usageErr(fmt.Errorf("--trust-domain: %v", err))
	}
	if f.days < 1 {
		return nil, nil, usageErr(fmt.Errorf("--days must be at least 1, got %d", f.days))
	}
	if f.client {
		if len(f.ips) > 0 || len(f.dns) > 0 {
			return nil, nil, usageErr(errors.New("--ip and --dns are the addresses a node is reached at; a --client certificate has none"))
		}
		return nil, nil, nil
	}
	ips, dns := f.ips, f.dns
	if len(ips) == 0 && len(dns) == 0 {
		ips, dns = defaultNodeIPs, defaultNodeDNS
	}
	var parsed []net.IP
	for _, s := range ips {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return nil, nil, usageErr(fmt.Errorf("--ip: %q is not an IP address", s))
		}
		if ip.IsUnspecified() {
			return nil, nil, usageErr(fmt.Errorf("--ip: %s is no address a node is reached at", s))
		}
		parsed = append(parsed, ip)
	}
	for _, name := range dns {
		if err := tlsconfig.ValidateDNSName(name); err != nil {
			return nil, nil, usageErr(fmt.Errorf("--dns: %v", err))
		}
	}
	return parsed, dns, nil
}

func (f *certFlags) run(cmd *cobra.Command) error {
	ips, dns, err := f.check()
	if err != nil {
		return err
	}
	caCert, caKey := f.ca, f.caKey
	if caCert == "" {
		caCert = filepath.Join(f.dir, caCertFile)
	}
	if caKey == "" {
		caKey = filepath.Join(f.dir, caKeyFile)
	}
	ca, err := tlsconfig.LoadCA(caCert, caKey)
	if err != nil {
		return fmt.Errorf("--ca %s, --ca-key %s: %v (admitd tls ca create makes them)", caCert, caKey, err)
	}
	validity := time.Duration(f.days) * day
	var b tlsconfig.Bundle
	if f.client {
		b, err = ca.IssueClient(tlsconfig.ClientOptions{ID: f.id, TrustDomain: f.trustDomain, Validity: validity})
	} else {
		b, err = ca.IssueNode(tlsconfig.NodeOptions{ID: f.id, TrustDomain: f.trustDomain, IPs: ips, DNSNames: dns, Validity: validity})
	}
	if errors.Is(err, tlsconfig.ErrOutlivesCA) {
		return fmt.Errorf("--days %d: %v", f.days, err)
	}
	if err != nil {
		return err
	}
	cert, key := filepath.Join(f.dir, f.id+".pem"), filepath.Join(f.dir, f.id+"-key.pem")
	if err := b.Write(cert, key, f.force); err != nil {
		return err
	}
	printIssued(cmd.OutOrStdout(), cert, key, b, f.client)
	return nil
}

// printIssued says what was written and what the certificate names, so
// no one has to run openssl to find out.
func printIssued(w io.Writer, cert, key string, b tlsconfig.Bundle, client bool) {
	c := b.Cert
	names := make([]string, 0, 1+len(c.IPAddresses)+len(c.DNSNames))
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	for _, ip := range c.IPAddresses {
		names = append(names, "IP "+ip.String())
	}
	for _, n := range c.DNSNames {
		names = append(names, "DNS "+n)
	}
	kind := "node " + c.Subject.CommonName + " (server and client auth)"
	if client {
		kind = "client " + c.Subject.CommonName + " (client auth only)"
	}
	fmt.Fprintf(w, "wrote %s: %s, %s, valid until %s\n", cert, kind, strings.Join(names, ", "), until(b))
	fmt.Fprintf(w, "wrote %s: its key (mode 0600)\n", key)
}

func until(b tlsconfig.Bundle) string { return b.Cert.NotAfter.UTC().Format(time.DateOnly) }
