package main

import (
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/admitd/admitd/internal/daemon"
	"github.com/admitd/admitd/internal/failpoint"
	"github.com/admitd/admitd/internal/server"
)

type serveFlags struct {
	cfg      daemon.Config
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
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	fl.StringVar(&f.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fl.BoolVar(&f.logJSON, "log-json", false, "log as JSON lines")
	registerSecurity(cmd, &f)
	registerOps(cmd, &c.Ops)
	return cmd
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	tuneGC()
	// The fault suite's crash points; off unless the variable is set.
	failpoint.Enable(os.Getenv(failpoint.EnvVar), os.Stderr, os.Exit)
	cfg := f.cfg
	if cfg.Bootstrap && f.join != "" {
		return usageErr(errors.New("--bootstrap and --join exclude each other"))
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
	}
	if cfg.Collect.MaxStaged < 1 || cfg.Staging.Deadline <= 0 || cfg.Staging.Interval <= 0 {
		return usageErr(errors.New("--max-staged must be at least 1, --promote-deadline and --promote-interval positive"))
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
