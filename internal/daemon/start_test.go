package daemon

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/internal/testutil"
)

// startDaemon runs cfg until the test ends. A port the OS handed out free
// can be taken by another process before the daemon binds it; a start
// that fails on that alone is tried again on fresh ports, a few times.
func startDaemon(t *testing.T, cfg *Config) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, *cfg) }()
		err := awaitBound(cfg.HTTPAddr, done)
		if err == nil {
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("%s: %v", cfg.ID, err)
				}
			})
			return
		}
		cancel()
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			cfg.RaftAddr, cfg.HTTPAddr = testutil.FreeAddr(t), testutil.FreeAddr(t)
			continue
		}
		t.Fatalf("%s did not start: %v", cfg.ID, err)
	}
}

// bindGrace is how long a daemon whose API listens may still fail to bind
// its raft address: the two binds are a few steps apart in Run.
const bindGrace = 2 * time.Second

// awaitBound waits until the API address takes connections and the daemon
// has not failed for bindGrace after that.
func awaitBound(httpAddr string, done <-chan error) error {
	deadline := time.Now().Add(60 * time.Second) // -race on a busy machine
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return earlyEnd(err)
		default:
		}
		if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
			c.Close()
			select {
			case err := <-done:
				return earlyEnd(err)
			case <-time.After(bindGrace):
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("its API never took connections")
}

// earlyEnd is a daemon's early end as an error: it never ends cleanly by itself.
func earlyEnd(err error) error {
	if err == nil {
		return errors.New("it stopped by itself")
	}
	return err
}

// A raft port taken between its choice and the daemon's bind costs a
// retry on fresh ports, not the test.
func TestStartDaemonRetriesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := metricsNode(t, "n1")
	cfg.Bootstrap = true
	cfg.RaftAddr = taken.Addr().String()
	startDaemon(t, &cfg)
	if cfg.RaftAddr == taken.Addr().String() {
		t.Fatal("started on a taken raft port")
	}
}
