// Package decisionlog writes every admission decision as one JSON line in
// OPA's decision-log event shape (plugins/logs EventV1), to a file rotated
// by size or to standard output, with fields masked as OPA masks them.
package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/admitd/admitd/admission"
)

// Stdout names standard output as the destination.
const Stdout = "-"

// Path is the event's "path": the policy decision that was asked for.
const Path = "admitd/pipeline"

// Bundle is the key of the policy set under "bundles".
const Bundle = "admitd"

// TimestampFormat is RFC 3339 with nanoseconds, always nine digits.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Config says where decisions go and what is masked.
type Config struct {
	// File is the destination: a path, or "-" for standard output.
	File string
	// MaxSizeMB rotates the file when it would grow beyond this many
	// megabytes; MaxBackups rotated files are kept (0 keeps all).
	MaxSizeMB  int
	MaxBackups int
	// Mask lists JSON pointers to erase from every event, such as
	// /input/site/token; they must start with /input or /result.
	Mask []string
	// Stdout is used for "-"; nil means os.Stdout.
	Stdout io.Writer
}

// Logger writes decision events. It is safe for concurrent use.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	mask   []string
}

// Open opens the destination. The file is created (0600, and its
// directory 0750) or appended to.
func Open(cfg Config) (*Logger, error) {
	for _, p := range cfg.Mask {
		if err := CheckPointer(p); err != nil {
			return nil, fmt.Errorf("decision log mask %q: %v", p, err)
		}
	}
	l := &Logger{mask: append([]string(nil), cfg.Mask...)}
	switch cfg.File {
	case "":
		return nil, errors.New("decision log: no destination")
	case Stdout, "stdout":
		l.w = cfg.Stdout
		if l.w == nil {
			l.w = os.Stdout
		}
	default:
		// Fail now, not at the first decision, when the file cannot be written.
		if err := os.MkdirAll(filepath.Dir(cfg.File), 0o750); err != nil {
			return nil, fmt.Errorf("decision log: %v", err)
		}
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("decision log: %v", err)
		}
		f.Close()
		size := cfg.MaxSizeMB
		if size <= 0 {
			size = 100
		}
		lj := &lumberjack.Logger{Filename: cfg.File, MaxSize: size, MaxBackups: cfg.MaxBackups}
		l.w, l.closer = lj, lj
	}
	return l, nil
}

// Close closes the file; standard output stays open.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// Info is what a decision does not carry itself.
type Info struct {
	NodeID      string
	Version     string
	Mode        string // "enforce" or "dry-run"
	Via         string // "admission" or "evaluate"
	RequestedBy string // the client's address, when known
	Source      string // where the policy set came from
}

// MaskFunc returns the masking the policy set asks for an event
// (data.system.log.mask); nil masks nothing.
type MaskFunc func(ctx context.Context, event any) ([]admission.MaskOp, error)

// Event builds the OPA-shaped event of a decision, as a JSON object.
//
//	decision_id, path, input (the facts), result (the decision without its
//	facts, which are the input), timestamp, metrics (timer_*_ns),
//	labels {id, node_id, version, mode}, bundles {admitd: {revision}},
//	requested_by, custom {admitd-specific fields}
func Event(d *admission.Decision, info Info) (map[string]any, error) {
	// The result is the decision without its facts, which are the input:
	// encode a shallow copy without them rather than the facts twice.
	bare := *d
	bare.Facts = nil
	result, err := decode(mustMarshal(&bare))
	if err != nil {
		return nil, err
	}
	res := result.(map[string]any)
	delete(res, "facts")
	var input any
	if len(d.Facts) > 0 {
		if input, err = decode(d.Facts); err != nil {
			return nil, fmt.Errorf("decision %s: facts: %v", d.DecisionID, err)
		}
	}
	ts := time.Now().UTC()
	if t, err := time.Parse(time.RFC3339Nano, d.Timestamp); err == nil {
		ts = t.UTC()
	}
	ev := map[string]any{
		"decision_id": d.DecisionID,
		"path":        Path,
		"input":       input,
		"result":      res,
		"timestamp":   ts.Format(TimestampFormat),
		"metrics":     timers(d, input),
		"labels": map[string]any{
			"id": info.NodeID, "node_id": info.NodeID, "version": info.Version, "mode": info.Mode,
		},
		"bundles": map[string]any{Bundle: map[string]any{"revision": d.PolicyRevision}},
		"custom": map[string]any{
			"via":             info.Via,
			"allowed":         d.Allowed,
			"enforced":        d.Enforced,
			"stopped_at":      d.StoppedAt,
			"decided_by":      d.DecidedBy,
			"config_index":    d.ConfigIndex,
			"applied":         d.Applied,
			"permanent":       d.Permanent,
			"policy_source":   info.Source,
			"policy_revision": d.PolicyRevision,
		},
	}
	if info.RequestedBy != "" {
		ev["requested_by"] = info.RequestedBy
	}
	if input == nil {
		delete(ev, "input")
	}
	return ev, nil
}

// timers are OPA-style metrics: evaluation, each stage and each collector.
func timers(d *admission.Decision, input any) map[string]any {
	ns := func(ms float64) int64 { return int64(ms * 1e6) }
	m := map[string]any{"timer_admitd_eval_ns": ns(d.EvalMS)}
	for _, s := range d.Stages {
		switch {
		case s.DurationMS == nil:
		case s.DurationShared:
			// One evaluation decided every stage: one timer, not a copy per stage.
			m["timer_admitd_stages_ns"] = ns(*s.DurationMS)
		default:
			m["timer_stage_"+s.Name+"_ns"] = ns(*s.DurationMS)
		}
	}
	doc, _ := input.(map[string]any)
	for _, c := range []string{"reachability", "init_state", "topology"} {
		sec, _ := doc[c].(map[string]any)
		if n, ok := sec["duration_ms"].(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				m["timer_collect_"+c+"_ns"] = ns(f)
			}
		}
	}
	return m
}

// Log masks and writes one decision. Masking pointers from the flag and
// from the policy set are applied; erased and upserted paths are listed in
// "erased" and "masked", as OPA does.
func (l *Logger) Log(ctx context.Context, d *admission.Decision, info Info, mask MaskFunc) error {
	ev, err := Event(d, info)
	if err != nil {
		return err
	}
	ops := make([]admission.MaskOp, 0, len(l.mask))
	for _, p := range l.mask {
		ops = append(ops, admission.MaskOp{Op: "remove", Path: p})
	}
	var maskErr error
	if mask != nil {
		more, err := mask(ctx, ev)
		if err != nil {
			// Fail closed: an event the policy could not mask is written
			// without input and result rather than unmasked.
			maskErr = fmt.Errorf("system.log.mask: %v", err)
			ops = append(ops, admission.MaskOp{Op: "remove", Path: "/input"}, admission.MaskOp{Op: "remove", Path: "/result"})
		}
		ops = append(ops, more...)
	}
	Apply(ev, ops)
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		return err
	}
	return maskErr
}

// Apply performs mask operations on an event in place. Pointers outside
// /input and /result, and paths that do not exist, are ignored.
func Apply(ev map[string]any, ops []admission.MaskOp) {
	var erased, masked []string
	for _, op := range ops {
		if CheckPointer(op.Path) != nil {
			continue
		}
		toks := tokens(op.Path)
		switch op.Op {
		case "remove":
			if remove(ev, toks) {
				erased = append(erased, op.Path)
			}
		case "upsert":
			if upsert(ev, toks, op.Value) {
				masked = append(masked, op.Path)
			}
		}
	}
	if len(erased) > 0 {
		sort.Strings(erased)
		ev["erased"] = dedupe(erased)
	}
	if len(masked) > 0 {
		sort.Strings(masked)
		ev["masked"] = dedupe(masked)
	}
}

// CheckPointer accepts JSON pointers under /input or /result.
func CheckPointer(p string) error {
	if p != "/input" && p != "/result" && !strings.HasPrefix(p, "/input/") && !strings.HasPrefix(p, "/result/") {
		return errors.New("a JSON pointer must start with /input or /result")
	}
	return nil
}

// tokens splits a JSON pointer (RFC 6901), unescaping ~1 and ~0.
func tokens(p string) []string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

// parent walks to the container of the last token.
func parent(root any, toks []string) (any, bool) {
	cur := root
	for _, t := range toks[:len(toks)-1] {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[t]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func remove(root map[string]any, toks []string) bool {
	p, ok := parent(root, toks)
	if !ok {
		return false
	}
	last := toks[len(toks)-1]
	switch c := p.(type) {
	case map[string]any:
		if _, ok := c[last]; ok {
			delete(c, last)
			return true
		}
	case []any:
		// Arrays keep their length: the element is erased to null.
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(c) {
			c[i] = nil
			return true
		}
	}
	return false
}

func upsert(root map[string]any, toks []string, v any) bool {
	p, ok := parent(root, toks)
	if !ok {
		return false
	}
	last := toks[len(toks)-1]
	switch c := p.(type) {
	case map[string]any:
		c[last] = v
		return true
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(c) {
			c[i] = v
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// decode reads JSON keeping numbers exact.
func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
