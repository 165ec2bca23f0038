package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Transient: what asking again may change.
func TestTransient(t *testing.T) {
	for err, want := range map[error]bool{
		&StatusError{Status: http.StatusServiceUnavailable, Code: "NO_LEADER"}: true,
		&StatusError{Status: http.StatusBadGateway, Code: "FORWARD_FAILED"}:    true,
		&StatusError{Status: http.StatusGatewayTimeout, Code: "UNKNOWN"}:       true,
		&StatusError{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED"}: false,
		&StatusError{Status: http.StatusNotFound, Code: "NOT_FOUND"}:           false,
		context.Canceled: false,
	} {
		if got := Transient(err); got != want {
			t.Errorf("%v: transient %v, want %v", err, got, want)
		}
	}
	if Transient(nil) {
		t.Error("nil is transient")
	}

	// Nothing listening: connection refused, asked again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(2 * time.Second)
	if _, err := c.Cluster(context.Background(), "http://"+addr); !Transient(err) {
		t.Errorf("connection refused: %v not transient", err)
	}

	// An HTTPS server asked without its CA: a certificate refused is not.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := c.Cluster(context.Background(), srv.URL); err == nil || Transient(err) {
		t.Errorf("an unknown certificate authority: %v transient", err)
	}
}
