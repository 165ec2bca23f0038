package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

var goodCandidate = facts.Candidate{ID: "n9", RaftAddr: "127.0.0.1:9", APIURL: "http://127.0.0.1:9"}

func candidateBody(f func(*facts.Candidate)) string {
	c := goodCandidate
	f(&c)
	return admissionBody(c, true)
}

func TestAdmissionRejectsHostileFields(t *testing.T) {
	n := startNode(t, "n1", true)
	cases := map[string]string{
		"id over 128 bytes":       candidateBody(func(c *facts.Candidate) { c.ID = strings.Repeat("x", 129) }),
		"id with NUL":             candidateBody(func(c *facts.Candidate) { c.ID = "n\x009" }),
		"id with newline":         candidateBody(func(c *facts.Candidate) { c.ID = "n9\nadmin" }),
		"id with DEL":             candidateBody(func(c *facts.Candidate) { c.ID = "n9\x7f" }),
		"id not ASCII":            candidateBody(func(c *facts.Candidate) { c.ID = "nö9" }),
		"id dot":                  candidateBody(func(c *facts.Candidate) { c.ID = "." }),
		"id dot dot":              candidateBody(func(c *facts.Candidate) { c.ID = ".." }),
		"id invalid UTF-8":        `{"candidate": {"id": "n` + "\xff" + `9", "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9"}}`,
		"empty addr":              candidateBody(func(c *facts.Candidate) { c.RaftAddr = "" }),
		"addr too long":           candidateBody(func(c *facts.Candidate) { c.RaftAddr = strings.Repeat("a", 300) + ":9" }),
		"addr with newline":       candidateBody(func(c *facts.Candidate) { c.RaftAddr = "127.0.0.1:9\n" }),
		"addr without host":       candidateBody(func(c *facts.Candidate) { c.RaftAddr = ":9" }),
		"IPv6 without brackets":   candidateBody(func(c *facts.Candidate) { c.RaftAddr = "::1:9" }),
		"addr port zero":          candidateBody(func(c *facts.Candidate) { c.RaftAddr = "127.0.0.1:0" }),
		"addr unspecified v4":     candidateBody(func(c *facts.Candidate) { c.RaftAddr = "0.0.0.0:9" }),
		"addr unspecified v6":     candidateBody(func(c *facts.Candidate) { c.RaftAddr = "[::]:9" }),
		"addr port name":          candidateBody(func(c *facts.Candidate) { c.RaftAddr = "127.0.0.1:http" }),
		"url blank":               candidateBody(func(c *facts.Candidate) { c.APIURL = " " }),
		"url too long":            candidateBody(func(c *facts.Candidate) { c.APIURL = "http://h/" + strings.Repeat("a", 600) }),
		"url file":                candidateBody(func(c *facts.Candidate) { c.APIURL = "file:///etc/passwd" }),
		"url javascript":          candidateBody(func(c *facts.Candidate) { c.APIURL = "javascript:alert(1)" }),
		"url relative":            candidateBody(func(c *facts.Candidate) { c.APIURL = "/v1/state" }),
		"url with user info":      candidateBody(func(c *facts.Candidate) { c.APIURL = "http://admin:pw@127.0.0.1:9" }),
		"url with control chars":  candidateBody(func(c *facts.Candidate) { c.APIURL = "http://127.0.0.1:9/\r\nX-Evil: 1" }),
		"candidate null":          `{"candidate": null}`,
		"candidate array":         `{"candidate": []}`,
		"body array":              `[]`,
		"body null":               `null`,
		"dry_run string":          `{"candidate": {"id": "n9", "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9"}, "dry_run": "yes"}`,
		"unknown candidate field": `{"candidate": {"id": "n9", "raft_addr": "127.0.0.1:9", "api_url": "http://127.0.0.1:9", "role": "voter"}}`,
		"deeply nested":           strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			wantError(t, post(t, n.http.URL+"/v1/admissions", body), http.StatusBadRequest, "BAD_REQUEST")
		})
	}
}

// IPv6 literals are valid addresses: the request is decided, not refused.
func TestAdmissionAcceptsIPv6HostPort(t *testing.T) {
	n := startNodeWith(t, "n1", true, nodeOpts{collectTimeout: time.Second})
	body := candidateBody(func(c *facts.Candidate) { c.RaftAddr, c.APIURL = "[::1]:9", "http://[::1]:9" })
	r := post(t, n.http.URL+"/v1/admissions", body)
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden || d.StoppedAt != "reachability" {
		t.Fatalf("IPv6 candidate: %d %s", r.status, r.body)
	}
}

// A body declared huge but never sent is refused at once, not waited for.
func TestHugeContentLengthSmallBody(t *testing.T) {
	n := startNode(t, "n1", true)
	conn, err := net.Dial("tcp", n.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "POST /v1/admissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: 1000000000000\r\n\r\n{}")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	wantError(t, response{status: resp.StatusCode, body: b}, http.StatusRequestEntityTooLarge, "TOO_LARGE")
}

// A chunked body has no Content-Length; the reader's limit catches it.
func TestOversizedChunkedBody(t *testing.T) {
	n := startNode(t, "n1", true)
	body := io.MultiReader(strings.NewReader(`{"candidate": {"id": "`), strings.NewReader(strings.Repeat("x", 2<<20)))
	r := do(t, http.MethodPost, n.http.URL+"/v1/admissions", struct{ io.Reader }{body})
	wantError(t, r, http.StatusRequestEntityTooLarge, "TOO_LARGE")
}

// A candidate whose /v1/state streams 50 MiB slowly is a failed
// collection: denied within the collect deadline, and the leader keeps
// answering meanwhile.
func TestSlowHugeCandidateStateIsDenied(t *testing.T) {
	const collect = 2 * time.Second
	leader := startNodeWith(t, "n1", true, nodeOpts{collectTimeout: collect})
	api := slowHugeStateServer(t)
	raft, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raft.Close()
	cand := facts.Candidate{ID: "n2", RaftAddr: raft.Addr().String(), APIURL: api}

	done := make(chan response, 1)
	start := time.Now()
	go func() { done <- post(t, leader.http.URL+"/v1/admissions", admissionBody(cand, false)) }()
	var r response
	for waiting := true; waiting; {
		select {
		case r = <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
			checkResponsive(t, leader.http.URL)
		}
	}
	elapsed := time.Since(start)
	var d admission.Decision
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusForbidden || d.Allowed {
		t.Fatalf("admission: %d %s", r.status, r.body)
	}
	if d.StoppedAt != "reachability" || !strings.Contains(d.Reason, "API_UNREACHABLE") {
		t.Fatalf("stopped at %s: %s", d.StoppedAt, d.Reason)
	}
	if elapsed > collect+time.Second {
		t.Fatalf("took %s, collect deadline %s", elapsed, collect)
	}
}

// slowHugeStateServer streams a 50 MiB JSON string 1 KiB every 10ms.
func slowHugeStateServer(t *testing.T) string {
	t.Helper()
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"node_id": "`)
		chunk := strings.Repeat("x", 1024)
		for sent := 0; sent < 50<<20; sent += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	return srv
}

func checkResponsive(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: 500 * time.Millisecond}
	for _, path := range []string{"/v1/state", "/healthz"} {
		r, err := send(c, http.MethodGet, url+path, nil, nil)
		if err != nil || r.status != http.StatusOK {
			t.Errorf("leader unresponsive on %s during the admission: %v", path, err)
		}
	}
}
