package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/admitd/admitd/facts"
)

// CapabilitiesFile is the builtin allow-list inside a policy directory.
const CapabilitiesFile = "capabilities.json"

// SafetyStages must open the admit pipeline, in this order.
var SafetyStages = []string{"reachability", "init_state", "topology"}

// PromoteSafetyStages must open the promote pipeline, in this order.
var PromoteSafetyStages = []string{"reachability", "catch_up", "topology"}

// RemoveSafetyStages must open the remove pipeline (removals and
// demotions): the member being removed need not answer, so only topology.
var RemoveSafetyStages = []string{"topology"}

// ErrLoad wraps every failure to load a policy set.
var ErrLoad = errors.New("policy load failed")

// Source is a policy set to load: a file system and a name for messages.
type Source struct {
	FS   fs.FS
	Name string
	// Capabilities is used when the set has no capabilities.json.
	Capabilities *ast.Capabilities
}

// DirSource reads policies from a directory on disk.
func DirSource(dir string) Source {
	return Source{FS: os.DirFS(dir), Name: dir}
}

// policyFile says whether a path belongs to the policy set at all.
func policyFile(p string) bool {
	return strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, ".json")
}

// isTest says whether a policy file holds tests, which the daemon does not run.
func isTest(p string) bool { return strings.HasSuffix(p, "_test.rego") }

// Load compiles a policy set under its capabilities and prepares every
// query once. It refuses sets that do not compile or whose pipeline is not
// usable, so nothing is ever evaluated on a broken set.
func Load(ctx context.Context, src Source) (*Engine, error) {
	src, files, err := snapshot(src)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(files, src)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	compiler, store, err := compile(src, caps)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	e := &Engine{
		source:   src.Name,
		revision: revision(files),
		compiler: compiler,
		store:    store,
		caps:     caps,
	}
	if err := e.prepare(ctx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	if err := e.extend(ctx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	return e, nil
}

// snapshot reads a set's policy files once and returns a source over that
// copy, so the revision, the compiled modules and the tests all come from
// the same bytes even while the files change on disk (a reload).
func snapshot(src Source) (Source, map[string][]byte, error) {
	files, err := readFiles(src.FS)
	if err != nil {
		return src, nil, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	mfs := fstest.MapFS{}
	for p, b := range files {
		mfs[p] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	src.FS = mfs
	return src, files, nil
}

// readFiles returns every policy file's bytes by slash path.
func readFiles(fsys fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !policyFile(p) {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[p] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// revision hashes every policy file, tests and data included, by name.
func revision(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func capabilities(files map[string][]byte, src Source) (*ast.Capabilities, error) {
	b, ok := files[CapabilitiesFile]
	if !ok {
		if src.Capabilities == nil {
			return nil, fmt.Errorf("no %s and no default capabilities", CapabilitiesFile)
		}
		return src.Capabilities, nil
	}
	caps, err := ast.LoadCapabilitiesJSON(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", CapabilitiesFile, err)
	}
	return caps, nil
}

// compile parses the non-test modules and data and compiles them under caps.
func compile(src Source, caps *ast.Capabilities) (*ast.Compiler, storage.Store, error) {
	result, err := loader.NewFileLoader().
		WithFS(src.FS).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		WithCapabilities(caps).
		Filtered([]string{"."}, runtimeFilter)
	if err != nil {
		return nil, nil, err
	}
	modules := result.ParsedModules()
	if len(modules) == 0 {
		return nil, nil, errors.New("no Rego modules")
	}
	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithEnablePrintStatements(false)
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, nil, compiler.Errors
	}
	return compiler, inmem.NewFromObject(result.Documents), nil
}

// runtimeFilter excludes tests, capabilities and anything that is not policy.
func runtimeFilter(abspath string, info fs.FileInfo, _ int) bool {
	if info.IsDir() {
		return false
	}
	name := path.Base(abspath)
	return !policyFile(name) || isTest(name) || name == CapabilitiesFile
}

// prepare reads the pipeline and prepares the stage queries (pipeline.go).
func (e *Engine) prepare(ctx context.Context) error {
	stages, err := e.readStrings(ctx, "data.admitd.pipeline.stages")
	if err != nil {
		return fmt.Errorf("admitd.pipeline.stages: %v", err)
	}
	if err := checkPipeline("stages", stages, SafetyStages); err != nil {
		return err
	}
	e.stages = stages
	e.permanent = map[string]bool{}
	if codes, err := e.readStrings(ctx, "data.admitd.pipeline.permanent_codes"); err == nil {
		for _, c := range codes {
			e.permanent[c] = true
		}
	}
	admit, err := e.preparePipeline(ctx, stages)
	if err != nil {
		return err
	}
	e.pipelines = map[facts.Phase]*pipeline{facts.PhaseAdmit: admit}
	if err := e.prepareOptional(ctx, facts.PhasePromote, "promote_stages", PromoteSafetyStages); err != nil {
		return err
	}
	return e.prepareOptional(ctx, facts.PhaseRemove, "remove_stages", RemoveSafetyStages)
}

// prepareOptional prepares admitd.pipeline.<rule> for phase when the set
// defines it: without promote_stages staged candidates are never
// promoted, without remove_stages removals and demotions are refused.
func (e *Engine) prepareOptional(ctx context.Context, phase facts.Phase, rule string, safety []string) error {
	if !e.defined(ctx, "data.admitd.pipeline."+rule) {
		return nil
	}
	stages, err := e.readStrings(ctx, "data.admitd.pipeline."+rule)
	if err != nil {
		return fmt.Errorf("admitd.pipeline.%s: %v", rule, err)
	}
	if err := checkPipeline(rule, stages, safety); err != nil {
		return err
	}
	p, err := e.preparePipeline(ctx, stages)
	if err != nil {
		return err
	}
	e.pipelines[phase] = p
	return nil
}

// checkPipeline refuses an empty pipeline, duplicates, odd names, and one
// that does not open with the safety stages in order.
func checkPipeline(rule string, stages, safety []string) error {
	if len(stages) < len(safety) || !slices.Equal(stages[:len(safety)], safety) {
		return fmt.Errorf("admitd.pipeline.%s must start with %v, got %v", rule, safety, stages)
	}
	seen := map[string]bool{}
	for _, s := range stages {
		if seen[s] {
			return fmt.Errorf("admitd.pipeline.%s names %q twice", rule, s)
		}
		if !ast.IsVarCompatibleString(s) {
			return fmt.Errorf("admitd.pipeline.%s: %q is not a valid package name", rule, s)
		}
		seen[s] = true
	}
	return nil
}

// defined says whether a query has a value.
func (e *Engine) defined(ctx context.Context, q string) bool {
	rs, err := e.newQuery(q).Eval(ctx)
	return err == nil && len(rs) > 0
}

func (e *Engine) newQuery(q string, opts ...func(*rego.Rego)) *rego.Rego {
	base := []func(*rego.Rego){
		rego.Query(q),
		rego.Compiler(e.compiler),
		rego.Store(e.store),
		rego.Capabilities(e.caps),
		rego.StrictBuiltinErrors(true),
	}
	return rego.New(append(base, opts...)...)
}

// readStrings evaluates a constant array or set of strings.
func (e *Engine) readStrings(ctx context.Context, q string) ([]string, error) {
	rs, err := e.newQuery(q).Eval(ctx)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, errors.New("undefined")
	}
	raw, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("want an array of strings, got %T", rs[0].Expressions[0].Value)
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want strings, got %T", v)
		}
		out = append(out, s)
	}
	return out, nil
}

func (e *Engine) hasPackage(pkg string) bool {
	for _, m := range e.compiler.Modules {
		if strings.TrimPrefix(m.Package.Path.String(), "data.") == pkg {
			return true
		}
	}
	return false
}
