package tlsconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of the certificates admitd creates.
const (
	DefaultTrustDomain = "admitd"
	DefaultCAName      = "admitd CA"
	DefaultCAValidity  = 5 * 365 * 24 * time.Hour
	DefaultValidity    = 365 * 24 * time.Hour
)

// backdate is how far before now a certificate becomes valid, so a peer
// whose clock runs a little behind does not reject it as not yet valid.
const backdate = 5 * time.Minute

// Bundle is a certificate and its private key, parsed and as PEM.
type Bundle struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CAOptions describe a new CA; zero fields take the defaults.
type CAOptions struct {
	Name     string        // subject common name
	Validity time.Duration // from now
}

// NodeOptions describe a node certificate, used both to serve the API and
// to call other nodes, so it carries both extended key usages.
type NodeOptions struct {
	ID          string
	TrustDomain string   // of the SPIFFE URI; default DefaultTrustDomain
	IPs         []net.IP // addresses the node is reached at
	DNSNames    []string // names the node is reached at; one equal to ID also names it
	Validity    time.Duration
}

// ClientOptions describe an operator's or a controller's certificate: it
// only authenticates a caller, so it carries no address and cannot serve.
type ClientOptions struct {
	ID          string
	TrustDomain string
	Validity    time.Duration
}

// NodeURI is the SAN URI naming node id, the one the reachability policy
// accepts as proof of the candidate's identity (any trust domain).
func NodeURI(trustDomain, id string) string {
	return "spiffe://" + trustDomain + "/admitd/" + id
}

// ClientURI names a client. Its path is outside /admitd/, so a client
// certificate never reads as a node's identity.
func ClientURI(trustDomain, id string) string {
	return "spiffe://" + trustDomain + "/admitd-client/" + id
}

// ValidateTrustDomain accepts a SPIFFE trust domain: lowercase letters,
// digits, '.', '-' and '_'.
func ValidateTrustDomain(td string) error {
	if td == "" {
		return errors.New("empty")
	}
	for _, r := range td {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%q: a trust domain holds only lowercase letters, digits, '.', '-' and '_'", td)
		}
	}
	return nil
}

// ValidateCertID accepts ids that a certificate can carry unchanged: in a
// SPIFFE path segment (which the policy compares as a plain string, so no
// character may need escaping) and as a file name.
func ValidateCertID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > 128 {
		return errors.New("longer than 128 bytes")
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%q is a path segment", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%q: a certificate id holds only letters, digits, '.', '-' and '_'", id)
		}
	}
	return nil
}

// ValidateDNSName accepts a host name (a leading "*." wildcard too).
func ValidateDNSName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if net.ParseIP(name) != nil {
		return fmt.Errorf("%q is an IP address, not a DNS name", name)
	}
	host := strings.TrimPrefix(name, "*.")
	if len(host) > 253 {
		return fmt.Errorf("%q is longer than 253 bytes", name)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q has an empty or overlong label", name)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q has a character that is not a letter, digit, '-' or '_'", name)
			}
		}
	}
	return nil
}

// CreateCA makes a self-signed ECDSA P-256 CA that signs only end-entity
// certificates (path length 0).
func CreateCA(opts CAOptions) (Bundle, error) {
	name := opts.Name
	if name == "" {
		name = DefaultCAName
	}
	validity := opts.Validity
	if validity == 0 {
		validity = DefaultCAValidity
	}
	if validity < 0 {
		return Bundle{}, errors.New("tls: a CA's validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return Bundle{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return sign(tmpl, tmpl, key, key)
}

// LoadCA reads a CA certificate and its key from PEM files, checking the
// key belongs to the certificate and the certificate may sign others.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: CA %s with key %s: %w", certFile, keyFile, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls: CA %s: %w", certFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("tls: %s is not a CA certificate (it may not sign certificates)", certFile)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("tls: CA %s expired on %s", certFile, cert.NotAfter.UTC().Format(time.DateOnly))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tls: CA key %s cannot sign", keyFile)
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// IssueNode signs a node certificate: server and client authentication,
// the SPIFFE URI naming its id, and the addresses it is reached at.
func (ca *CA) IssueNode(opts NodeOptions) (Bundle, error) {
	td, err := trustDomain(opts.TrustDomain)
	if err != nil {
		return Bundle{}, err
	}
	if err := ValidateCertID(opts.ID); err != nil {
		return Bundle{}, fmt.Errorf("tls: id: %v", err)
	}
	if len(opts.IPs) == 0 && len(opts.DNSNames) == 0 {
		return Bundle{}, errors.New("tls: a node certificate needs an IP address or a DNS name the node is reached at")
	}
	for _, n := range opts.DNSNames {
		if err := ValidateDNSName(n); err != nil {
			return Bundle{}, fmt.Errorf("tls: DNS name: %v", err)
		}
	}
	uri, err := url.Parse(NodeURI(td, opts.ID))
	if err != nil {
		return Bundle{}, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: opts.ID},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{uri},
		IPAddresses: opts.IPs,
		DNSNames:    opts.DNSNames,
	}
	return ca.issue(tmpl, opts.Validity)
}

// IssueClient signs a certificate for a caller of the API (an operator's
// CLI, a controller): client authentication only.
func (ca *CA) IssueClient(opts ClientOptions) (Bundle, error) {
	td, err := trustDomain(opts.TrustDomain)
	if err != nil {
		return Bundle{}, err
	}
	if err := ValidateCertID(opts.ID); err != nil {
		return Bundle{}, fmt.Errorf("tls: id: %v", err)
	}
	uri, err := url.Parse(ClientURI(td, opts.ID))
	if err != nil {
		return Bundle{}, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: opts.ID},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{uri},
	}
	return ca.issue(tmpl, opts.Validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (Bundle, error) {
	if validity == 0 {
		validity = DefaultValidity
	}
	if validity < 0 {
		return Bundle{}, errors.New("tls: a certificate's validity must be positive")
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-backdate), now.Add(validity)
	// A certificate that outlives its CA stops verifying at the CA's end
	// without saying so; refuse rather than shorten it silently.
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		return Bundle{}, fmt.Errorf("tls: the certificate would be valid until %s, %w (%s); ask for a shorter validity or make a new CA",
			tmpl.NotAfter.UTC().Format(time.DateOnly), ErrOutlivesCA, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	serial, err := newSerial()
	if err != nil {
		return Bundle{}, err
	}
	tmpl.SerialNumber = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, err
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (Bundle, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return Bundle{}, fmt.Errorf("tls: signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Bundle{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Bundle{}, err
	}
	return Bundle{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// newSerial is 128 random bits plus one: positive, as RFC 5280 requires,
// and within its 20 octets.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func trustDomain(td string) (string, error) {
	if td == "" {
		return DefaultTrustDomain, nil
	}
	if err := ValidateTrustDomain(td); err != nil {
		return "", fmt.Errorf("tls: trust domain: %v", err)
	}
	return td, nil
}

// ErrOutlivesCA is returned (wrapped) when a certificate asked for would
// still be valid after its CA expires.
var ErrOutlivesCA = errors.New("after its CA expires")

// Modes of the files Write creates: a key is for its owner alone.
const (
	CertMode fs.FileMode = 0o644
	KeyMode  fs.FileMode = 0o600
)

// ErrExists is returned (wrapped, naming the file) by Write when a file
// is already there and force is false.
var ErrExists = errors.New("already exists")

// Write saves the certificate and the key. Without force it refuses when
// either file exists, before writing anything, so a pair is never half
// replaced; with force it replaces both, each by a rename, so a reader
// never sees a partial file and the key keeps mode 0600.
func (b Bundle) Write(certPath, keyPath string, force bool) error {
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{{certPath, b.CertPEM, CertMode}, {keyPath, b.KeyPEM, KeyMode}}
	if !force {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("%s %w (--force replaces it)", f.path, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	var written []string
	for _, f := range files {
		if err := writeFile(f.path, f.data, f.mode, force); err != nil {
			if !force {
				// Undo this call's half: the refusal leaves things as found.
				for _, p := range written {
					_ = os.Remove(p)
				}
			}
			return err
		}
		written = append(written, f.path)
	}
	return nil
}

func writeFile(path string, data []byte, mode fs.FileMode, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if !force {
		// O_EXCL: a file created since the check above is not replaced.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s %w (--force replaces it)", path, ErrExists)
		}
		if err != nil {
			return err
		}
		return finish(f, data, mode, path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if err := finish(f, data, mode, f.Name()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// finish writes, sets the mode (the umask may have narrowed it) and closes;
// on failure the file is removed.
func finish(f *os.File, data []byte, mode fs.FileMode, path string) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}
