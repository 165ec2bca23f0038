// Command kvstore is a small replicated key/value service on
// hashicorp/raft whose join endpoint is gated by admitd: a server joins
// only when admitd's policies allow it (reachable, fresh, and safe for the
// cluster's quorum), and then as a non-voter that the gate promotes once
// it has caught up.
//
//	kvstore -id n1 -raft-addr 127.0.0.1:7001 -http-addr 127.0.0.1:8001 -bootstrap
//	kvstore -id n2 -raft-addr 127.0.0.1:7002 -http-addr 127.0.0.1:8002 -join http://127.0.0.1:8001
//	curl -X PUT -d bar 127.0.0.1:8001/key/foo
//	curl 127.0.0.1:8002/key/foo
//	curl 127.0.0.1:8001/status
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd"
)

type config struct {
	id, raftAddr, httpAddr, dataDir string
	bootstrap                       bool
	join                            string
	joinTimeout                     time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.id, "id", "", "raft server id (required)")
	flag.StringVar(&c.raftAddr, "raft-addr", "127.0.0.1:7001", "raft address to bind and advertise")
	flag.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:8001", "HTTP API address")
	flag.StringVar(&c.dataDir, "data-dir", "", "data directory (default ./data/<id>)")
	flag.BoolVar(&c.bootstrap, "bootstrap", false, "start a new single-server cluster when there is no raft state")
	flag.StringVar(&c.join, "join", "", "URL of a member to ask for admission when there is no raft state")
	flag.DurationVar(&c.joinTimeout, "join-timeout", 2*time.Minute, "give up joining after this long")
	flag.Parse()
	if c.id == "" || (c.bootstrap && c.join != "") {
		fmt.Fprintln(os.Stderr, "kvstore: -id is required; -bootstrap and -join exclude each other")
		os.Exit(2)
	}
	if c.dataDir == "" {
		c.dataDir = "data/" + c.id
	}
	log := hclog.New(&hclog.LoggerOptions{Name: c.id, Level: hclog.Info})
	if err := run(c, log); err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}

func run(c config, log hclog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st := newStore()
	n, err := openRaft(c.id, c.raftAddr, c.dataDir, st, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := n.shutdown(); err != nil {
			log.Error("shutdown", "error", err)
		}
	}()
	if c.bootstrap && !n.hasState {
		if err := n.bootstrap(c.id); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}

	// The gate: it collects facts about a candidate, evaluates admitd's
	// policies and, on an allow, adds the candidate as a non-voter that it
	// promotes later, whichever server leads by then.
	gate, err := admitd.New(n.raft, n.fsm, admitd.WithLogger(log.Named("admitd")), admitd.WithLocalID(c.id))
	if err != nil {
		return err
	}
	defer gate.Close()

	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	api := &service{id: c.id, raft: n.raft, store: st, gate: gate}
	srv := &http.Server{Handler: api.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	log.Info("serving", "http", ln.Addr().String(), "raft", n.trans.LocalAddr(), "has_state", n.hasState)

	joined := make(chan error, 1)
	switch {
	case n.hasState:
		log.Info("raft state found: restarting as a member of its cluster")
	case c.join != "":
		go func() { joined <- joinCluster(ctx, c.join, c.id, n.trans.LocalAddr(), n.raft, c.joinTimeout, log) }()
	case !c.bootstrap:
		log.Info("no raft state: waiting for a member to admit this server")
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return nil
		case err := <-joined:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
		}
	}
}
