// Package testutil holds what the tests of several packages share. The e2e
// tests keep their own copies on purpose (see package e2e).
package testutil

import (
	"testing"

	"github.com/admitd/admitd/internal/tools/proc"
)

// FreeAddr is a free port on 127.0.0.1, released for the test's server to
// listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
