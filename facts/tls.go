package facts

import "errors"

// errNotTLS is the identity error when TLS is required but the answer
// came over plain HTTP (an http:// api_url).
var errNotTLS = errors.New("the candidate's API did not answer over TLS; this cluster requires an https api_url")

// tlsInfo says which identity the candidate's /v1/state answer proved. It
// comes from the connection that carried the answer, so the init state and
// the identity cannot come from two different servers.
func (r stateResult) tlsInfo(required bool) TLSInfo {
	info := TLSInfo{Enabled: required, URIs: []string{}, DNSNames: []string{}}
	if !required {
		return info
	}
	if r.conn == nil {
		info.Error = errNotTLS.Error()
		if r.err != nil {
			info.Error = r.err.Error()
		}
		return info
	}
	info.Verified = len(r.conn.VerifiedChains) > 0
	if len(r.conn.PeerCertificates) == 0 {
		info.Error = "the candidate presented no certificate"
		return info
	}
	leaf := r.conn.PeerCertificates[0]
	for _, u := range leaf.URIs {
		info.URIs = append(info.URIs, u.String())
	}
	info.DNSNames = append(info.DNSNames, leaf.DNSNames...)
	if !info.Verified {
		info.Error = "the candidate's certificate was not verified"
	}
	return info
}
