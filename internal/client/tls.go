package client

import (
	"crypto/tls"
	"net/http"
)

// WithTLS makes c use cfg for HTTPS calls (the CA to trust and the
// certificate to present); nil leaves c unchanged.
func (c *Client) WithTLS(cfg *tls.Config) *Client {
	if cfg == nil {
		return c
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	c.HTTP.Transport = t
	return c
}

// WithToken makes c send token as a bearer token.
func (c *Client) WithToken(token string) *Client {
	c.Token = token
	return c
}
