package raftglue_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/raftglue"
)

// A ready-made node: open it on a data directory, bootstrap a one-server
// cluster, and read the membership it leads.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "raftglue-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	n, err := raftglue.Open(raftglue.Config{
		ID:       "n1",
		RaftAddr: "127.0.0.1:0", // a free port
		APIURL:   "http://127.0.0.1:7400",
		DataDir:  dir,
		Logger:   hclog.NewNullLogger(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("leader:", n.IsLeader(), "members:", len(n.Members()), "api:", n.Members()["n1"].APIURL)
	// Output: leader: true members: 1 api: http://127.0.0.1:7400
}
