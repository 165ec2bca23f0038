package server_test

import (
	"net/http"
	"testing"

	"github.com/admitd/admitd/internal/server"
)

// A dry-run node clears no tombstone, and does not forward the request to
// a leader that would.
func TestDryRunModeKeepsTombstones(t *testing.T) {
	leader := opsNode(t, "n1", true, func(c *server.Config) { c.DryRun = true })
	wantError(t, do(t, http.MethodDelete, leader.http.URL+"/v1/tombstones/n9", nil), http.StatusConflict, "DRY_RUN_MODE")
}
