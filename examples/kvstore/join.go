package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// decision is the part of admitd's decision a joining node reads.
type decision struct {
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason"`
	Permanent bool   `json:"permanent"` // a deny that waiting cannot change
	Applied   *struct {
		Suffrage string `json:"suffrage"`
	} `json:"applied"`
}

// joinCluster asks the server at url to admit this one. It retries, with
// backoff, what may pass later: no answer, a 5xx (503: that server does not
// lead; 500: its gate could not decide, e.g. the leader changed mid-way)
// and a deny that is not permanent (a member not healthy yet, the staging
// slot taken). It gives up on a permanent deny (a duplicate id, a node with
// state of its own), on any other answer, and after timeout.
func joinCluster(ctx context.Context, url, id string, raftAddr raft.ServerAddress, r *raft.Raft, timeout time.Duration, log hclog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, _ := json.Marshal(joinRequest{ID: id, RaftAddr: string(raftAddr)})
	url = strings.TrimRight(url, "/") + "/join"
	backoff := 250 * time.Millisecond
	for {
		code, answer, err := post(ctx, url, body)
		var d decision
		_ = json.Unmarshal(answer, &d)
		switch {
		case err != nil:
			log.Warn("join: no answer; retrying", "url", url, "error", err)
		case code == http.StatusOK && d.Applied != nil:
			log.Info("join: admitted", "as", d.Applied.Suffrage, "reason", d.Reason)
			return nil
		case code == http.StatusForbidden && !d.Permanent:
			log.Warn("join: denied for now; retrying", "reason", d.Reason)
		case code >= 500:
			log.Warn("join: no decision; retrying", "status", code, "answer", string(answer))
		case isMember(r, id):
			// A lost answer: this server was added, and a retry found it there.
			log.Info("join: this server is already in the configuration")
			return nil
		case code == http.StatusForbidden:
			return fmt.Errorf("join refused: %s", d.Reason)
		default:
			return fmt.Errorf("join: %s answered %d: %s", url, code, answer)
		}
		if isMember(r, id) {
			log.Info("join: this server is in the configuration")
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("join: not admitted within %s", timeout)
			}
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, answer, err
}

// isMember says whether this node sees itself in its raft configuration.
func isMember(r *raft.Raft, id string) bool {
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return true
		}
	}
	return false
}
