package server

import "net/http"

// JSON answers are compact, as OPA, Consul and Vault answer; a request
// with ?pretty (any value) gets them indented for reading. Compact saves
// re-indenting every decision, the facts it carries included.

// prettyWriter marks a response whose request asked for ?pretty.
type prettyWriter struct{ http.ResponseWriter }

// Unwrap lets http.ResponseController reach the underlying writer.
func (p prettyWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

func prettyJSON(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" && r.URL.Query().Has("pretty") {
			w = prettyWriter{w}
		}
		h.ServeHTTP(w, r)
	})
}

func wantsPretty(w http.ResponseWriter) bool {
	_, ok := w.(prettyWriter)
	return ok
}
