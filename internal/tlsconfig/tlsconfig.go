// Package tlsconfig builds the TLS configurations of admitd's API: the
// server side (optionally requiring client certificates) and the client
// side used for every call between nodes and by the CLI.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Server returns the API's TLS configuration. cert and key are required;
// with a CA, clients must present a certificate it signed (mTLS).
func Server(cert, key, ca string) (*tls.Config, error) {
	if cert == "" || key == "" {
		return nil, errors.New("tls: a server needs both a certificate and a key")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if ca != "" {
		pool, err := loadPool(ca)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns a configuration that trusts ca (the system roots when
// empty) and presents cert and key when both are given.
func Client(cert, key, ca string) (*tls.Config, error) {
	if (cert == "") != (key == "") {
		return nil, errors.New("tls: a client certificate needs its key, and a key its certificate")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if ca != "" {
		pool, err := loadPool(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Enabled says whether any TLS option was given, so a client that only
// names a CA still gets a TLS configuration.
func Enabled(cert, key, ca string) bool { return cert != "" || key != "" || ca != "" }

func loadPool(ca string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("tls: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: CA %s holds no PEM certificate", ca)
	}
	return pool, nil
}
