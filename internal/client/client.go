// Package client calls an admitd node's HTTP API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/internal/api"
)

// maxResponse bounds what is read from a server.
const maxResponse = 8 << 20

// Client talks to admitd servers.
type Client struct {
	HTTP  *http.Client
	Token string
}

// New returns a client with a request timeout.
func New(timeout time.Duration) *Client {
	return &Client{HTTP: &http.Client{Timeout: timeout}}
}

// StatusError is a non-success answer with the contract's error body.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Admit asks server to admit a candidate. A 200 or 403 returns the
// decision; anything else is a *StatusError or a transport error.
func (c *Client) Admit(ctx context.Context, server string, req api.AdmissionRequest) (*admission.Decision, error) {
	body, _ := json.Marshal(req)
	return c.decision(ctx, http.MethodPost, server, api.AdmissionsPath, body)
}

// Remove asks server to remove member id; Demote to make it a non-voter.
// A 200 or 403 returns the decision.
func (c *Client) Remove(ctx context.Context, server, id string, req api.ChangeRequest) (*admission.Decision, error) {
	body, _ := json.Marshal(req)
	return c.decision(ctx, http.MethodDelete, server, api.MembersPath+"/"+url.PathEscape(id), body)
}

// Demote asks server to make the voter id a non-voter.
func (c *Client) Demote(ctx context.Context, server, id string, req api.ChangeRequest) (*admission.Decision, error) {
	body, _ := json.Marshal(req)
	return c.decision(ctx, http.MethodPost, server, api.MembersPath+"/"+url.PathEscape(id)+"/demote", body)
}

// decision makes a call whose 200 and 403 answers are decisions.
func (c *Client) decision(ctx context.Context, method, server, path string, body []byte) (*admission.Decision, error) {
	resp, err := c.do(ctx, method, server, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		return nil, readError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("reading the decision: %v", err)
	}
	var d admission.Decision
	// A 403 from something in front of admitd (a proxy, an authz layer) is
	// not a decision: without a decision id it is an error, not a deny.
	if err := json.Unmarshal(raw, &d); err != nil || d.DecisionID == "" {
		return nil, &StatusError{Status: resp.StatusCode, Code: "NOT_A_DECISION", Message: strings.TrimSpace(string(raw[:min(len(raw), 512)]))}
	}
	return &d, nil
}

// State reads a node's /v1/state.
func (c *Client) State(ctx context.Context, server string) (facts.NodeState, error) {
	var st facts.NodeState
	return st, c.getJSON(ctx, server, facts.StatePath, &st)
}

// Admission reads where a staged admission stands.
func (c *Client) Admission(ctx context.Context, server, id string) (*api.AdmissionStatus, error) {
	var st api.AdmissionStatus
	return &st, c.getJSON(ctx, server, api.AdmissionsPath+"/"+url.PathEscape(id), &st)
}

// Cluster reads a node's /v1/cluster.
func (c *Client) Cluster(ctx context.Context, server string) (api.ClusterView, error) {
	var v api.ClusterView
	return v, c.getJSON(ctx, server, api.ClusterPath, &v)
}

func (c *Client) getJSON(ctx context.Context, server, path string, v any) error {
	return c.callJSON(ctx, http.MethodGet, server, path, v)
}

// callJSON sends a bodiless request and decodes a 200 answer into v.
func (c *Client) callJSON(ctx context.Context, method, server, path string, v any) error {
	resp, err := c.do(ctx, method, server, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(v)
}

func (c *Client) do(ctx context.Context, method, server, path string, body []byte) (*http.Response, error) {
	target := strings.TrimRight(server, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.HTTP.Do(req)
}

func readError(resp *http.Response) error {
	var body api.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &body) != nil || body.Error.Code == "" {
		return &StatusError{Status: resp.StatusCode, Code: "UNKNOWN", Message: strings.TrimSpace(string(raw))}
	}
	return &StatusError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message}
}

// ClearTombstone lets a removed id be admitted again.
func (c *Client) ClearTombstone(ctx context.Context, server, id string) error {
	var out map[string]any
	return c.deleteJSON(ctx, server, api.TombstonesPath+"/"+url.PathEscape(id), &out)
}

func (c *Client) deleteJSON(ctx context.Context, server, path string, v any) error {
	return c.callJSON(ctx, http.MethodDelete, server, path, v)
}

// Transient says whether a call may succeed when made again: the server
// did not answer (refused, reset, closed, timed out), as while a node
// starts or restarts, or answered 502, 503 or 504 (no leader yet, an
// election, a leader that just died). A 4xx, a certificate refused or an
// unknown host are not.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
