package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/admitd/admitd/raftglue"
)

// clusterIDWait bounds how long a restarted node waits to replay its
// cluster id before comparing it with the join target's.
const clusterIDWait = 10 * time.Second

// checkJoinTarget handles --join on a node that already has state. A
// member of the target cluster simply restarts; a node that belongs to
// another cluster is refused at once, since no admission can make an
// initialized node join a second cluster.
func checkJoinTarget(ctx context.Context, cfg Config, node *raftglue.Node) error {
	log := cfg.Logger
	ours := replayedClusterID(ctx, node)
	cl := joinClient(cfg)
	for _, url := range cfg.Join {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := cl.State(sctx, url)
		cancel()
		if err != nil || st.ClusterID == "" {
			continue
		}
		if ours != "" && st.ClusterID != ours {
			return fmt.Errorf("%w: this node has state of cluster %s, but %s serves cluster %s; wipe its data directory to join as a new node",
				ErrJoinRefused, ours, url, st.ClusterID)
		}
		if ours == "" && !listed(ctx, cfg, url, node) {
			// State without a cluster id (a bootstrap that crashed early) is
			// its own cluster unless the target lists this node.
			return fmt.Errorf("%w: this node has raft state but no cluster id, and %s does not list it as a member; wipe its data directory to join as a new node",
				ErrJoinRefused, url)
		}
		log.Info("existing raft state found; restarting as a member of the cluster it was asked to join", "cluster_id", st.ClusterID)
		return nil
	}
	log.Warn("existing raft state found; the join target could not be asked, restarting as a member of its own cluster", "cluster_id", ours)
	return nil
}

// listed says whether the cluster behind url has this node, by id and raft
// address, in its configuration.
func listed(ctx context.Context, cfg Config, url string, node *raftglue.Node) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	view, err := joinClient(cfg).Cluster(ctx, url)
	if err != nil {
		return false
	}
	for _, s := range view.Servers {
		if s.ID == node.ID() && s.Address == node.Addr() {
			return true
		}
	}
	return false
}

// replayedClusterID waits, bounded, for the FSM to replay the cluster id.
func replayedClusterID(ctx context.Context, node *raftglue.Node) string {
	deadline := time.Now().Add(clusterIDWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if id := node.ClusterID(); id != "" {
			return id
		}
		time.Sleep(100 * time.Millisecond)
	}
	return node.ClusterID()
}

// repairClusterID finishes a bootstrap that crashed before the cluster id
// was recorded: once this node leads a cluster without an id, it sets one.
// The FSM keeps the first id, so a race with another leader is harmless.
func repairClusterID(ctx context.Context, cfg Config, node *raftglue.Node) {
	for i := 0; i < 300 && ctx.Err() == nil; i++ {
		if node.ClusterID() != "" {
			return
		}
		if node.IsLeader() {
			if err := node.EnsureClusterID(ctx); err != nil {
				cfg.Logger.Warn("could not record a cluster id", "error", err)
				continue
			}
			cfg.Logger.Info("recorded the cluster id a crashed bootstrap left unset", "cluster_id", node.ClusterID())
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
