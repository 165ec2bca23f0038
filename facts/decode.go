package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxDocumentBytes bounds a facts document read from any source.
const MaxDocumentBytes = 1 << 20

// Limits on candidate fields.
const (
	maxIDLen   = 128
	maxAddrLen = 256
	maxURLLen  = 512
)

// ErrMalformed wraps every decoding failure so callers can map it to a 400.
var ErrMalformed = errors.New("malformed facts document")

// Decoded is a validated document together with its raw JSON. Policies see
// the raw form, so a field that was absent stays absent.
type Decoded struct {
	Doc *Document
	Raw []byte
}

// Decode reads one facts document strictly: known fields only, the right
// types, the known schema, and nothing after the document.
func Decode(r io.Reader) (*Decoded, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrMalformed, err)
	}
	if len(raw) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxDocumentBytes)
	}
	return DecodeBytes(raw)
}

// DecodeBytes is Decode over a byte slice.
func DecodeBytes(raw []byte) (*Decoded, error) {
	var doc Document
	if err := StrictUnmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if doc.Schema != Schema {
		return nil, fmt.Errorf("%w: schema %q is not %q", ErrMalformed, doc.Schema, Schema)
	}
	switch doc.Phase {
	case "", PhaseAdmit, PhasePromote, PhaseRemove:
	default:
		return nil, fmt.Errorf("%w: phase %q is none of %q, %q, %q", ErrMalformed, doc.Phase, PhaseAdmit, PhasePromote, PhaseRemove)
	}
	if err := doc.Candidate.validateFor(doc.Phase); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &Decoded{Doc: &doc, Raw: raw}, nil
}

// StrictUnmarshal decodes exactly one JSON value into v, rejecting unknown
// fields, wrong types and trailing data, with the offending field named.
func StrictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Errorf("field %q: got JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.EOF):
		return errors.New("empty document")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	}
	return err
}

// validateFor is Validate, except that a removal may name a server that is
// not in the configuration, with no address: the policy then says so.
func (c Candidate) validateFor(phase Phase) error {
	if phase == PhaseRemove && c.RaftAddr == "" && c.APIURL == "" {
		if err := ValidateID(c.ID); err != nil {
			return fmt.Errorf("candidate.id: %v", err)
		}
		return nil
	}
	return c.Validate()
}

// Validate checks the candidate's fields are present and well formed.
func (c Candidate) Validate() error {
	if err := ValidateID(c.ID); err != nil {
		return fmt.Errorf("candidate.id: %v", err)
	}
	if err := ValidateHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("candidate.raft_addr: %v", err)
	}
	if c.APIURL == "" {
		return nil // a candidate that runs nothing but raft
	}
	if err := ValidateHTTPURL(c.APIURL); err != nil {
		return fmt.Errorf("candidate.api_url: %v", err)
	}
	return nil
}

// ValidateID accepts short printable ids without spaces.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	if id == "." || id == ".." {
		// A path segment: /v1/members/.. would name another route, so
		// such a member could never be removed.
		return fmt.Errorf("%q is a path segment", id)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("%q has a character outside printable ASCII", id)
		}
	}
	return nil
}

// ValidateHostPort accepts host:port with a numeric port in 1..65535.
func ValidateHostPort(addr string) error {
	if addr == "" {
		return errors.New("empty")
	}
	if len(addr) > maxAddrLen {
		return fmt.Errorf("longer than %d bytes", maxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has no usable host", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		// 0.0.0.0 and [::] reach whatever listens on the machine: the same
		// server as a member's loopback address, spelled otherwise.
		return fmt.Errorf("%q is an unspecified address, not one server's", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has no port in 1..65535", addr)
	}
	return nil
}

// ValidateHTTPURL accepts absolute http or https URLs with a host.
func ValidateHTTPURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	if len(raw) > maxURLLen {
		return fmt.Errorf("longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not http or https", raw)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%q needs a host and no user info", raw)
	}
	return nil
}
