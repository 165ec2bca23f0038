package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/daemon"
	"github.com/admitd/admitd/internal/failpoint"
	"github.com/admitd/admitd/internal/server"
)

type serveFlags struct {
	cfg      daemon.Config
	config   string // --config file
	join     string
	logLevel string
	logJSON  bool
	token    string // token file
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an admitd node",
		Long: `Run an admitd node: its HTTP API, its raft node and the admission gate.

With --bootstrap it starts a new cluster; with --join URL it asks that
cluster to admit it (asking again, until --join-timeout, while the
answer may change); with neither it waits, uninitialized, until an
operator admits it with admitd join. A node with state in its
--data-dir does none of these: it restarts as the member it was.

--config FILE reads flags from a YAML file whose keys are the flag
names (id: n1, join: [http://127.0.0.1:7400], join-timeout: 2m); a flag
on the command line wins over the file. docs/configuration.md lists
every key.

SIGINT or SIGTERM stops the node cleanly.

Exit status: 0 clean shutdown, 1 error (an address in use, damaged raft
state, a policy set that does not load), 2 usage (a bad flag or
configuration file), 3 the cluster refused --join for good.`,
		Example: `  # a new cluster, then a node that asks it for admission
  admitd serve --id n1 --bootstrap --http-addr 127.0.0.1:7400 --raft-addr 127.0.0.1:7401
  admitd serve --id n2 --join http://127.0.0.1:7400 --http-addr 127.0.0.1:7410 --raft-addr 127.0.0.1:7411

  # a node that waits until an operator runs admitd join for it
  admitd serve --id n4 --http-addr 127.0.0.1:7430 --raft-addr 127.0.0.1:7431

  # flags from a file, one of them overridden
  admitd serve --config /etc/admitd/n3.yaml --log-level debug`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.config != "" {
				if err := applyConfig(cmd, f.config, newServeCmd); err != nil {
					return err
				}
			}
			return runServe(cmd, f)
		},
	}
	fl := cmd.Flags()
	c := &f.cfg
	fl.StringVar(&c.ID, "id", "node1", "this node's raft server id")
	fl.StringVar(&c.RaftAddr, "raft-addr", "127.0.0.1:7401", "raft address to bind and advertise")
	fl.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:7400", "HTTP API address")
	fl.StringVar(&c.APIURL, "api-url", "", "advertised API URL (default http://<http-addr>, https:// with --tls-cert)")
	fl.StringVar(&c.DataDir, "data-dir", "", "data directory (default ./data/<id>)")
	fl.StringVar(&c.Policies, "policies", "", "policy directory (default ./policies, else the embedded set)")
	fl.BoolVar(&c.Bootstrap, "bootstrap", false, "start a new cluster (only without existing state)")
	fl.StringVar(&f.join, "join", "", "comma-separated API URLs of a cluster to ask for admission")
	fl.DurationVar(&c.JoinTimeout, "join-timeout", 2*time.Minute, "give up joining after this long")
	fl.IntVar(&c.Decisions, "decisions-kept", 256, "evaluations kept for /v1/decisions (admissions, promotions and removals are kept apart, at least 512)")
	fl.DurationVar(&c.Collect.Overall, "collect-timeout", 3*time.Second, "deadline for collecting all facts")
	fl.DurationVar(&c.Collect.Reachability, "reachability-timeout", 1500*time.Millisecond, "deadline for the reachability collector")
	fl.DurationVar(&c.Collect.InitState, "init-state-timeout", 1500*time.Millisecond, "deadline for the init-state collector")
	fl.DurationVar(&c.Collect.Topology, "topology-timeout", 1500*time.Millisecond, "deadline for the topology collector")
	fl.DurationVar(&c.Raft.Heartbeat, "raft-heartbeat-timeout", 0, "raft heartbeat timeout (0: raft default)")
	fl.DurationVar(&c.Raft.Election, "raft-election-timeout", 0, "raft election timeout (0: raft default)")
	fl.DurationVar(&c.Raft.LeaderLease, "raft-leader-lease-timeout", 0, "raft leader lease timeout (0: raft default)")
	fl.BoolVar(&c.Staging.Enabled, "staged", true, "admit candidates as non-voters and promote them when the promote policies allow (false: add voters directly)")
	fl.IntVar(&c.Collect.MaxStaged, "max-staged", 1, "how many non-voters may be in stage at once")
	fl.DurationVar(&c.Staging.Deadline, "promote-deadline", 5*time.Minute, "remove a staged non-voter not promoted within this long")
	fl.BoolVar(&c.Staging.Keep, "keep-unpromoted", false, "leave a staged non-voter in place after its deadline")
	fl.DurationVar(&c.Staging.Interval, "promote-interval", time.Second, "time between promotion checks on the leader")
	fl.Uint64Var(&c.Raft.TrailingLogs, "raft-trailing-logs", 0, "log entries kept after a snapshot (0: raft default)")
	fl.Uint64Var(&c.Raft.SnapshotThreshold, "raft-snapshot-threshold", 0, "log entries between automatic snapshots (0: raft default)")
	fl.IntVar(&c.Raft.WALSegmentBytes, "raft-wal-segment-bytes", 0, "size of a raft log segment; compaction drops whole segments (0: 64 MiB)")
	fl.BoolVar(&c.DebugEndpoints, "debug-endpoints", false, "serve POST /v1/debug/fill (replicated test entries); never in production")
	level := enumVarP(cmd, &f.logLevel, "log-level", "", "info", "trace, debug, info, warn or error", "trace", "debug", "info", "warn", "error")
	level.fold = true
	fl.BoolVar(&f.logJSON, "log-json", false, "log as JSON lines")
	fl.StringVar(&f.config, "config", "", "YAML file of serve flags, keyed by flag name (docs/configuration.md); flags on the command line win")
	registerSecurity(cmd, &f)
	registerOps(cmd, &c.Ops)
	_ = fl.SetAnnotation("join", annCommaList, []string{"true"})
	fileFlags(cmd, []string{"yaml", "yml"}, "config")
	dirFlags(cmd, "policies", "data-dir")
	noFileCompletion(cmd)
	return cmd
}

// checkServeAddrs checks the node's id and addresses before anything is
// opened, each error naming its flag. Port 0 is accepted: the OS picks.
func checkServeAddrs(cmd *cobra.Command, cfg daemon.Config) error {
	if err := facts.ValidateID(cfg.ID); err != nil {
		return usageErr(fmt.Errorf("%s: %v", flagRef(cmd, "id"), err))
	}
	for name, addr := range map[string]string{"raft-addr": cfg.RaftAddr, "http-addr": cfg.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usageErr(fmt.Errorf("%s: %q is not host:port", flagRef(cmd, name), addr))
		}
	}
	if cfg.APIURL != "" {
		if err := facts.ValidateHTTPURL(cfg.APIURL); err != nil {
			return usageErr(fmt.Errorf("%s: %v", flagRef(cmd, "api-url"), err))
		}
	}
	return nil
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	tuneGC()
	// The fault suite's crash points; off unless the variable is set.
	failpoint.Enable(os.Getenv(failpoint.EnvVar), os.Stderr, os.Exit)
	cfg := f.cfg
	if cfg.Bootstrap && f.join != "" {
		return usageErr(fmt.Errorf("%s and %s exclude each other", flagRef(cmd, "bootstrap"), flagRef(cmd, "join")))
	}
	if err := checkServeAddrs(cmd, cfg); err != nil {
		return err
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
		for _, u := range cfg.Join {
			if err := facts.ValidateHTTPURL(u); err != nil {
				return usageErr(fmt.Errorf("%s: %v", flagRef(cmd, "join"), err))
			}
		}
	}
	switch {
	case cfg.Collect.MaxStaged < 1:
		return usageErr(fmt.Errorf("%s must be at least 1, got %d", flagRef(cmd, "max-staged"), cfg.Collect.MaxStaged))
	case cfg.Staging.Deadline <= 0:
		return usageErr(fmt.Errorf("%s must be positive, got %s", flagRef(cmd, "promote-deadline"), cfg.Staging.Deadline))
	case cfg.Staging.Interval <= 0:
		return usageErr(fmt.Errorf("%s must be positive, got %s", flagRef(cmd, "promote-interval"), cfg.Staging.Interval))
	}
	level := hclog.LevelFromString(f.logLevel)
	if level == hclog.NoLevel {
		return usageErr(errors.New("unknown --log-level " + f.logLevel))
	}
	if err := prepareOps(cmd, &cfg); err != nil {
		return err
	}
	if f.token != "" {
		token, err := server.ReadToken(f.token)
		if err != nil {
			return err
		}
		cfg.Token = token
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "admitd", Level: level, JSONFormat: f.logJSON, Output: os.Stderr})
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := daemon.Run(ctx, cfg)
	if errors.Is(err, daemon.ErrJoinRefused) {
		return &exitCode{code: exitDenied, err: err}
	}
	return err
}
