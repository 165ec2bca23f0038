package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/internal/decisionlog"
	"github.com/admitd/admitd/internal/policyset"
	"github.com/admitd/admitd/internal/server"
)

// OpsConfig is how a node is operated: its mode, decision log, site facts
// and policy reloads.
type OpsConfig struct {
	// Mode is "enforce" (the default) or "dry-run": decide and log, never
	// change membership; decisions say enforced: false.
	Mode string
	// DecisionLog writes every decision as an OPA-style JSON line; an
	// empty File writes none.
	DecisionLog decisionlog.Config
	// SiteFacts is a JSON object file given to every collected facts
	// document as input.site, read with the policies (and reloaded with
	// them).
	SiteFacts string
	// PolicyTests runs the set's *_test.rego in-process before it is used,
	// at start and on every reload; a failing test refuses the set.
	PolicyTests bool
	// AllowUntested accepts a set with no tests at all (a warning at every
	// load); without it such a set is refused at start and on reload.
	AllowUntested bool
	// Watch reloads the policies when a file in their directory (or the
	// site facts file) changes, once changes have settled for Debounce.
	Watch    bool
	Debounce time.Duration
}

// MaxSiteFactsBytes bounds the site facts file.
const MaxSiteFactsBytes = 256 << 10

// DefaultDebounce is how long file changes must settle before a reload.
const DefaultDebounce = 500 * time.Millisecond

// Check validates the options that flags cannot.
func (o OpsConfig) Check() error {
	switch o.Mode {
	case "", server.ModeEnforce, server.ModeDryRun:
	default:
		return fmt.Errorf("--mode must be %s or %s, got %q", server.ModeEnforce, server.ModeDryRun, o.Mode)
	}
	for _, p := range o.DecisionLog.Mask {
		if err := decisionlog.CheckPointer(p); err != nil {
			return fmt.Errorf("--decision-log-mask %q: %v", p, err)
		}
	}
	if len(o.DecisionLog.Mask) > 0 && o.DecisionLog.File == "" {
		return errors.New("--decision-log-mask needs --decision-log")
	}
	return nil
}

func (o OpsConfig) dryRun() bool { return o.Mode == server.ModeDryRun }

// loadPolicySet reads, compiles and (with PolicyTests) tests the policy
// set, with the site facts attached. Startup and every reload go through
// it, so a node never runs a set that a reload would refuse.
func loadPolicySet(ctx context.Context, cfg Config) (*admission.Engine, error) {
	src, err := policyset.Resolve(cfg.Policies)
	if err != nil {
		return nil, err
	}
	site, err := readSiteFacts(cfg.Ops.SiteFacts)
	if err != nil {
		return nil, err
	}
	return admission.LoadWith(ctx, src, admission.Options{RunTests: cfg.Ops.PolicyTests, AllowUntested: cfg.Ops.AllowUntested, Site: site})
}

// readSiteFacts reads a JSON object; no file means no site facts.
func readSiteFacts(file string) (map[string]any, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("site facts: %v", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxSiteFactsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("site facts: %s: %v", file, err)
	}
	if len(raw) > MaxSiteFactsBytes {
		return nil, fmt.Errorf("site facts: %s: larger than %d bytes", file, MaxSiteFactsBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var site map[string]any
	if err := dec.Decode(&site); err != nil {
		return nil, fmt.Errorf("site facts: %s: want a JSON object: %v", file, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("site facts: %s: unexpected data after the JSON object", file)
	}
	if site == nil {
		return nil, fmt.Errorf("site facts: %s: want a JSON object, got null", file)
	}
	return site, nil
}

func logPolicySet(log hclog.Logger, e *admission.Engine) {
	args := []any{"source", e.Source(), "revision", e.Revision(), "stages", e.Stages()}
	if w := e.Enforcement(); len(w) > 0 {
		args = append(args, "warn_only", w)
	}
	if t := e.Tests(); t != nil {
		args = append(args, "tests_passed", t.Passed)
	}
	if e.SiteFacts() != nil {
		args = append(args, "site_facts", true)
	}
	log.Info("policies loaded", args...)
	if t := e.Tests(); t != nil && t.Passed == 0 {
		log.Warn("the policy set holds no test: accepted only because of --allow-untested-policies", "source", e.Source())
	}
	for _, n := range e.Notes() {
		log.Warn("policy set", "note", n)
	}
}

func openDecisionLog(cfg Config) (*decisionlog.Logger, error) {
	if cfg.Ops.DecisionLog.File == "" {
		return nil, nil
	}
	return decisionlog.Open(cfg.Ops.DecisionLog)
}

// startReloads reloads the policies on SIGHUP and, with Watch, on changes
// in their directory, until ctx ends. The returned function waits for the
// reloaders to stop.
func startReloads(ctx context.Context, cfg Config, srv *server.Server) func() {
	log := cfg.Logger.Named("reload")
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer func() { done <- struct{}{} }()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading policies")
				_, _ = srv.Reload(ctx, server.TriggerSignal)
			}
		}
	}()
	watching := false
	if cfg.Ops.Watch {
		w, err := newWatcher(cfg, log)
		if err != nil {
			log.Error("not watching the policies for changes", "error", err)
		} else if w != nil {
			watching = true
			go func() {
				defer func() { done <- struct{}{} }()
				w.run(ctx, func() { _, _ = srv.Reload(ctx, server.TriggerWatch) })
			}()
		}
	}
	return func() {
		cancel()
		<-done
		if watching {
			<-done
		}
	}
}

// watcher turns file events in the policy directory (and on the site
// facts file) into debounced reloads.
type watcher struct {
	fs       *fsnotify.Watcher
	log      hclog.Logger
	dir      string // "" when the set is embedded
	site     string // absolute site facts path, or ""
	debounce time.Duration
}

func newWatcher(cfg Config, log hclog.Logger) (*watcher, error) {
	src, err := policyset.Resolve(cfg.Policies)
	if err != nil {
		return nil, err
	}
	w := &watcher{log: log, debounce: cfg.Ops.Debounce}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if src.Name != policyset.EmbeddedName {
		if w.dir, err = filepath.Abs(src.Name); err != nil {
			return nil, err
		}
	}
	if cfg.Ops.SiteFacts != "" {
		if w.site, err = filepath.Abs(cfg.Ops.SiteFacts); err != nil {
			return nil, err
		}
	}
	if w.dir == "" && w.site == "" {
		log.Info("policies are embedded in the binary; nothing to watch")
		return nil, nil
	}
	if w.fs, err = fsnotify.NewWatcher(); err != nil {
		return nil, err
	}
	if w.dir != "" {
		err = filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			return w.fs.Add(p)
		})
		if err != nil {
			w.fs.Close()
			return nil, err
		}
	}
	if w.site != "" {
		// The directory, not the file: editors replace files by renaming.
		if err := w.fs.Add(filepath.Dir(w.site)); err != nil {
			w.fs.Close()
			return nil, err
		}
	}
	log.Info("watching for policy changes", "dir", w.dir, "site_facts", w.site, "debounce", w.debounce)
	return w, nil
}

// relevant says whether an event can change the policy set.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	p, err := filepath.Abs(ev.Name)
	if err != nil {
		return false
	}
	if w.site != "" && p == w.site {
		return true
	}
	if w.dir == "" || !strings.HasPrefix(p, w.dir+string(filepath.Separator)) {
		return false
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		if ev.Has(fsnotify.Create) {
			_ = w.fs.Add(p)
		}
		return true
	}
	return strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, ".json") || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
}

func (w *watcher) run(ctx context.Context, reload func()) {
	defer w.fs.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				w.log.Debug("policy change", "file", ev.Name, "op", ev.Op.String())
				timer.Reset(w.debounce)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.log.Warn("watching the policies", "error", err)
		case <-timer.C:
			w.log.Info("policy files changed: reloading")
			reload()
		}
	}
}
