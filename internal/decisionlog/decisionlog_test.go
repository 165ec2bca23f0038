package decisionlog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/decisionlog"
)

func decision(t *testing.T) *admission.Decision {
	t.Helper()
	e, err := admission.Load(context.Background(), admission.DirSource("../../policies"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../testdata/scenarios/allow-2-to-3/facts.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["site"] = map[string]any{"token": "s3cret", "window": "always"}
	raw, _ = json.Marshal(doc)
	d := &admission.Decision{DecisionID: "d1", Facts: raw, PolicyRevision: e.Revision(),
		Timestamp: time.Date(2026, 11, 25, 19, 0, 0, 120000000, time.UTC).Format(time.RFC3339Nano)}
	dur := 0.5
	d.Stages = []admission.StageResult{{Name: "reachability", Outcome: "allow", DurationMS: &dur}}
	d.EvalMS = 1.25
	return d
}

var info = decisionlog.Info{NodeID: "n1", Version: "0.1.0", Mode: "enforce", Via: "admission", Source: "policies"}

func TestLinesParseWithOPAFields(t *testing.T) {
	var buf bytes.Buffer
	l, err := decisionlog.Open(decisionlog.Config{File: "-", Stdout: &buf, Mask: []string{"/input/site/token"}})
	if err != nil {
		t.Fatal(err)
	}
	d := decision(t)
	for i := 0; i < 3; i++ {
		if err := l.Log(context.Background(), d, info, nil); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var ev struct {
			DecisionID string                    `json:"decision_id"`
			Path       string                    `json:"path"`
			Input      map[string]any            `json:"input"`
			Result     map[string]any            `json:"result"`
			Timestamp  string                    `json:"timestamp"`
			Metrics    map[string]float64        `json:"metrics"`
			Labels     map[string]string         `json:"labels"`
			Bundles    map[string]map[string]any `json:"bundles"`
			Custom     map[string]any            `json:"custom"`
			Erased     []string                  `json:"erased"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", lines, err, sc.Bytes())
		}
		if ev.DecisionID != "d1" || ev.Path != decisionlog.Path {
			t.Errorf("decision_id/path: %+v", ev)
		}
		if ev.Input["schema"] != "admitd.facts/v1" || ev.Result["decision_id"] != "d1" || ev.Result["facts"] != nil {
			t.Errorf("input must be the facts, result the decision without them: %v / %v", ev.Input["schema"], ev.Result)
		}
		if ev.Timestamp != "2026-11-25T19:00:00.120000000Z" {
			t.Errorf("timestamp %q is not RFC 3339 with nanoseconds", ev.Timestamp)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Timestamp); err != nil {
			t.Error(err)
		}
		if ev.Metrics["timer_admitd_eval_ns"] != 1250000 || ev.Metrics["timer_stage_reachability_ns"] != 500000 || ev.Metrics["timer_collect_reachability_ns"] == 0 {
			t.Errorf("metrics %v", ev.Metrics)
		}
		if ev.Labels["id"] != "n1" || ev.Labels["version"] != "0.1.0" {
			t.Errorf("labels %v", ev.Labels)
		}
		if rev, _ := ev.Bundles["admitd"]["revision"].(string); !strings.HasPrefix(rev, "sha256:") {
			t.Errorf("bundles %v", ev.Bundles)
		}
		if ev.Custom["via"] != "admission" || ev.Custom["policy_revision"] == nil {
			t.Errorf("custom %v", ev.Custom)
		}
		site := ev.Input["site"].(map[string]any)
		if _, ok := site["token"]; ok || site["window"] != "always" || len(ev.Erased) != 1 || ev.Erased[0] != "/input/site/token" {
			t.Errorf("token not masked: site %v erased %v", site, ev.Erased)
		}
	}
	if lines != 3 {
		t.Fatalf("want 3 lines, got %d", lines)
	}
}

func TestPolicyMaskAndFailClosed(t *testing.T) {
	var buf bytes.Buffer
	l, _ := decisionlog.Open(decisionlog.Config{File: "-", Stdout: &buf})
	mask := func(_ context.Context, ev any) ([]admission.MaskOp, error) {
		if ev.(map[string]any)["input"] == nil {
			t.Error("the mask rule did not get the event as input")
		}
		return []admission.MaskOp{{Op: "upsert", Path: "/input/site/token", Value: "**REDACTED**"}, {Op: "remove", Path: "/labels"}}, nil
	}
	if err := l.Log(context.Background(), decision(t), info, mask); err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["input"].(map[string]any)["site"].(map[string]any)["token"] != "**REDACTED**" || ev["labels"] == nil {
		t.Fatalf("upsert not applied, or a pointer outside /input and /result was: %v", ev)
	}
	buf.Reset()
	failing := func(context.Context, any) ([]admission.MaskOp, error) { return nil, context.DeadlineExceeded }
	if err := l.Log(context.Background(), decision(t), info, failing); err == nil {
		t.Fatal("a failing mask rule must be reported")
	}
	ev = nil
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["input"] != nil || ev["result"] != nil || ev["decision_id"] != "d1" {
		t.Fatalf("an event that could not be masked must be written without input and result: %v", ev)
	}
}

func TestFileRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "decisions.log")
	l, err := decisionlog.Open(decisionlog.Config{File: file, MaxSizeMB: 1, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := decision(t)
	d.Reason = strings.Repeat("x", 64<<10) // ~64 KiB per line
	for i := 0; i < 20; i++ {
		if err := l.Log(context.Background(), d, info, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "decisions*.log"))
	if len(files) < 2 {
		t.Fatalf("no rotation after ~1.3 MB: %v", files)
	}
	st, _ := os.Stat(file)
	if st.Size() > 1<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("current file %d bytes, mode %v", st.Size(), st.Mode())
	}
}

func TestBadMaskPointerRefused(t *testing.T) {
	if _, err := decisionlog.Open(decisionlog.Config{File: "-", Mask: []string{"/labels/id"}}); err == nil {
		t.Fatal("a pointer outside /input and /result was accepted")
	}
	if _, err := decisionlog.Open(decisionlog.Config{File: filepath.Join(os.DevNull, "dir.log")}); err == nil {
		t.Fatal("an unwritable file was accepted")
	}
}
