package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
)

// AdmittedPath is where a leader tells a candidate it admitted it, just
// before the raft change, so the candidate lets raft RPCs in.
const AdmittedPath = "/v1/admitted"

// ErrCandidateRefused is a candidate that did not take its admission.
var ErrCandidateRefused = errors.New("the candidate did not accept its admission")

// Admitted is the body of POST /v1/admitted.
//
// The candidate is not a member yet: whatever the leader sends it, an
// impostor at the candidate's api_url reads. So the cluster token never
// travels there. With a token configured, Proof is
// hex(HMAC-SHA256(token, admittedMessage(a))) over the other fields: it
// shows the sender holds the token, and is good for one candidate id, one
// decision and until ExpiresMS, nothing else (it is no bearer token, and no
// other endpoint takes it).
type Admitted struct {
	ClusterID   string `json:"cluster_id"`
	LeaderID    string `json:"leader_id"`
	CandidateID string `json:"candidate_id,omitempty"`
	DecisionID  string `json:"decision_id"`
	ExpiresMS   int64  `json:"expires_unix_ms,omitempty"` // Unix milliseconds
	Proof       string `json:"proof,omitempty"`
}

// admittedTimeout bounds the call to the candidate.
const admittedTimeout = 2 * time.Second

// admittedValidity is how long a proof is good for. The candidate checks
// the expiry on its own clock, so node clocks must agree within it.
const admittedValidity = 30 * time.Second

// admittedMessage is the canonical string a proof signs: a fixed label
// (no other use of the token can produce the same MAC input), then each
// field length-prefixed, so no two bodies share a message.
func admittedMessage(a Admitted) []byte {
	var b strings.Builder
	b.WriteString("admitd POST /v1/admitted v1\n")
	for _, f := range []string{a.ClusterID, a.LeaderID, a.CandidateID, a.DecisionID, strconv.FormatInt(a.ExpiresMS, 10)} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// admittedMAC is HMAC-SHA256(token, admittedMessage(a)).
func admittedMAC(token string, a Admitted) []byte {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write(admittedMessage(a))
	return mac.Sum(nil)
}

// signAdmitted sets a's proof.
func signAdmitted(token string, a Admitted) Admitted {
	a.Proof = hex.EncodeToString(admittedMAC(token, a))
	return a
}

// verifyAdmitted checks a proof with this node's own token: the MAC
// (compared in constant time), then that the admission names this node
// and has not expired. Single use is the ledger's (admittedLedger).
func verifyAdmitted(token, selfID string, a Admitted, now time.Time) error {
	got, err := hex.DecodeString(a.Proof)
	if a.Proof == "" || err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s needs the leader's proof of this admission (the proof field), and takes no bearer token", ErrUnauthorized, AdmittedPath)
	}
	if !hmac.Equal(got, admittedMAC(token, a)) {
		return fmt.Errorf("%w: the admission's proof does not match its fields under this node's cluster token", ErrUnauthorized)
	}
	if a.CandidateID != selfID {
		return fmt.Errorf("%w: the admission is for candidate %q, this node is %q", ErrUnauthorized, a.CandidateID, selfID)
	}
	if now.UnixMilli() > a.ExpiresMS {
		return fmt.Errorf("%w: the admission's proof expired at %s (this node's clock reads %s)", ErrUnauthorized,
			time.UnixMilli(a.ExpiresMS).UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// unhex decodes a proof (what of it is hex, when not all is).
func unhex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// admittedUsedMax bounds the decision ids remembered in memory.
const admittedUsedMax = 1024

// admittedLedger makes each proof single-use: a decision id whose proof
// this node took is refused the next time. What is covered:
//
//   - in this process, every id taken while its proof is unexpired (kept in
//     memory until its expiry passes, when the expiry check refuses it
//     anyway); past admittedUsedMax unexpired ids, new proofs are refused
//     rather than forgetting one early;
//   - across restarts, the admission that opened the fence: OpenFence
//     writes its body to admitted.json in the data directory, read back
//     when the server starts;
//   - anything else replayed later than its expiry (30s after the leader
//     signed it).
//
// Not covered: a replay within those 30s to a node restarted with its data
// directory wiped (admitted.json gone with it); only the expiry bounds that.
type admittedLedger struct {
	mu        sync.Mutex          // held across check, fence and record
	used      map[string]int64    // decision id -> its proof's expiry, Unix ms
	persisted map[string]struct{} // read back from admitted.json
}

func newAdmittedLedger(note []byte) *admittedLedger {
	l := &admittedLedger{used: map[string]int64{}, persisted: map[string]struct{}{}}
	var a Admitted
	if len(note) > 0 && json.Unmarshal(note, &a) == nil && a.DecisionID != "" {
		l.persisted[a.DecisionID] = struct{}{}
	}
	return l
}

// check refuses a decision id already taken, and a new one when the
// memory is full of unexpired ids. The caller holds l.mu.
func (l *admittedLedger) check(id string, now time.Time) error {
	if _, ok := l.persisted[id]; ok {
		return fmt.Errorf("%w: decision %s already opened this node's fence (recorded in its data directory); a proof is good once", ErrUnauthorized, id)
	}
	nowMS := now.UnixMilli()
	for k, exp := range l.used {
		if exp < nowMS {
			delete(l.used, k)
		}
	}
	if _, ok := l.used[id]; ok {
		return fmt.Errorf("%w: decision %s was already accepted by this node; a proof is good once", ErrUnauthorized, id)
	}
	if len(l.used) >= admittedUsedMax {
		return fmt.Errorf("%w: %d admissions of this node are still within their validity; try again later", ErrRateLimited, len(l.used))
	}
	return nil
}

// record marks id taken until exp. The caller holds l.mu.
func (l *admittedLedger) record(id string, exp int64) { l.used[id] = exp }

// handleAdmitted opens this node's raft fence. A node that has state is a
// member already and has no fence to open. With a cluster token the body
// must carry the leader's proof (verifyAdmitted, admittedLedger); without
// one the cluster is open and any well-formed body is taken.
func (s *Server) handleAdmitted(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var a Admitted
	if err := facts.StrictUnmarshal(body, &a); err != nil {
		writeError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if a.ClusterID == "" || a.LeaderID == "" || a.DecisionID == "" {
		writeError(w, fmt.Errorf("%w: cluster_id, leader_id and decision_id are required", ErrBadRequest))
		return
	}
	now := time.Now()
	if s.cfg.Token != "" {
		// Checked before the lock, so a flood of bad proofs waits on nothing.
		if err := verifyAdmitted(s.cfg.Token, s.node.ID(), a, now); err != nil {
			s.refusedAdmitted(w, a, err)
			return
		}
	}
	l := s.admitted
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.cfg.Token != "" {
		if err := l.check(a.DecisionID, now); err != nil {
			s.refusedAdmitted(w, a, err)
			return
		}
	}
	if s.node.Fenced() {
		if err := s.node.OpenFence(body); err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("admitted: accepting raft traffic", "cluster_id", a.ClusterID, "leader", a.LeaderID, "decision_id", a.DecisionID)
	}
	if s.cfg.Token != "" {
		l.record(a.DecisionID, a.ExpiresMS)
	}
	writeJSON(w, http.StatusOK, map[string]any{"fenced": s.node.Fenced(), "initialized": s.node.Initialized()})
}

// refusedAdmitted answers a proof that failed. The challenge names Bearer
// only for clients that expect a 401 to carry one; its description says a
// bearer token is not what this endpoint takes.
func (s *Server) refusedAdmitted(w http.ResponseWriter, a Admitted, err error) {
	s.metrics.counter("admitd_unauthenticated_requests_total", "Requests refused for a missing or wrong token.").Inc()
	// A proof that matches but is refused (another node's, expired, used)
	// is worth a warning; one that does not match is anyone's noise.
	logf := s.log.Warn
	if !hmac.Equal(unhex(a.Proof), admittedMAC(s.cfg.Token, a)) {
		logf = s.log.Debug
	}
	logf("refused an admission notice", "leader", a.LeaderID, "candidate_id", a.CandidateID, "decision_id", a.DecisionID, "error", err)
	if errors.Is(err, ErrUnauthorized) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="admitd", error="invalid_request", error_description="`+
			AdmittedPath+` takes the leader's proof of the admission in the body, not a bearer token"`)
	}
	writeError(w, err)
}

// tellAdmitted asks the candidate to accept raft traffic from this cluster.
// Without it a fenced candidate would refuse the log while counting in the
// configuration, so a failure stops the add. The cluster token is never
// sent: with one configured the body carries a proof bound to this
// admission instead (Admitted).
func (s *Server) tellAdmitted(ctx context.Context, d *admission.Decision) error {
	if d.Candidate.APIURL == "" {
		return nil // it runs nothing of admitd: no fence to open
	}
	ctx, cancel := context.WithTimeout(ctx, admittedTimeout)
	defer cancel()
	a := Admitted{ClusterID: s.node.ClusterID(), LeaderID: s.node.ID(), CandidateID: d.Candidate.ID,
		DecisionID: d.DecisionID, ExpiresMS: time.Now().Add(admittedValidity).UnixMilli()}
	if s.cfg.Token != "" {
		a = signAdmitted(s.cfg.Token, a)
	}
	body := mustJSON(a)
	url := strings.TrimRight(d.Candidate.APIURL, "/") + AdmittedPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCandidateRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCandidateRefused, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s", ErrCandidateRefused, url, resp.Status)
	}
	return nil
}
