package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// guard wraps every endpoint that changes state or reveals decisions. With a
// token configured the request must carry it as a bearer token; without one
// it is a pass-through (the daemon warns about that at startup).
func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	refused := s.metrics.counter("admitd_unauthenticated_requests_total", "Requests refused for a missing or wrong token.")
	return func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r.Header.Get("Authorization"), want) {
			refused.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="admitd"`)
			writeError(w, fmt.Errorf("%w: this endpoint needs the cluster token as \"Authorization: Bearer <token>\"", ErrUnauthorized))
			return
		}
		h(w, r)
	}
}

// bearerMatches compares digests, so neither the token's content nor its
// length shows in the comparison's timing.
func bearerMatches(header string, want [sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// ReadToken reads a token file: surrounding whitespace is dropped, and an
// empty token or one that cannot travel in a header is an error.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	for _, r := range token {
		if r <= ' ' || r >= 0x7f {
			return "", errors.New("token file " + path + ": the token must be printable ASCII without spaces")
		}
	}
	return token, nil
}

// forwardTransport is the default transport with the node's TLS settings.
func forwardTransport(cfg *tls.Config) http.RoundTripper {
	if cfg == nil {
		return http.DefaultTransport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return t
}
