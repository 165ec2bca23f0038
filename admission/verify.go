package admission

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestReport is the outcome of a set's own *_test.rego, run in-process.
type TestReport struct {
	Passed   int      `json:"passed"`
	Failed   []string `json:"failed,omitempty"` // "file:line: pkg.test_name: FAIL|ERROR[: message]"
	Skipped  int      `json:"skipped,omitempty"`
	Duration float64  `json:"duration_ms"`
}

// DefaultTestTimeout bounds one test case, as `opa test` does.
const DefaultTestTimeout = 5 * time.Second

// RunTests compiles a set with its tests under the set's capabilities (the
// same as `opa test --capabilities`) and runs every test. It returns an
// error wrapping ErrLoad when the set with its tests does not compile, and
// one wrapping ErrTestsFailed when a test fails or errors; the message
// names each failing test with its file and line.
func RunTests(ctx context.Context, src Source) (TestReport, error) {
	start := time.Now()
	var rep TestReport
	src, files, err := snapshot(src)
	if err != nil {
		return rep, err
	}
	caps, err := capabilities(files, src)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	result, err := loader.NewFileLoader().
		WithFS(src.FS).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		WithCapabilities(caps).
		Filtered([]string{"."}, testFilter)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	store := inmem.NewFromObject(result.Documents)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return rep, err
	}
	defer store.Abort(ctx, txn)
	compiler := ast.NewCompiler().WithCapabilities(caps).WithEnablePrintStatements(false)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(result.ParsedModules()).
		SetDefaultRegoVersion(ast.RegoV1).
		SetTimeout(DefaultTestTimeout).
		RaiseBuiltinErrors(true)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return rep, fmt.Errorf("%w: %s: %v", ErrLoad, src.Name, err)
	}
	for r := range ch {
		switch {
		case r.Skip:
			rep.Skipped++
		case r.Pass():
			rep.Passed++
		default:
			rep.Failed = append(rep.Failed, describeFailure(src.Name, r))
		}
	}
	sort.Strings(rep.Failed)
	rep.Duration = float64(time.Since(start).Nanoseconds()) / 1e6
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%w: %s: %d of %d failed: %s", ErrTestsFailed, src.Name,
			len(rep.Failed), len(rep.Failed)+rep.Passed, strings.Join(rep.Failed, "; "))
	}
	return rep, nil
}

func describeFailure(dir string, r *tester.Result) string {
	where := "?"
	if r.Location != nil {
		where = fmt.Sprintf("%s:%d", path.Join(dir, r.Location.File), r.Location.Row)
	}
	s := fmt.Sprintf("%s: %s.%s: FAIL", where, strings.TrimPrefix(r.Package, "data."), r.Name)
	if r.Error != nil {
		s = fmt.Sprintf("%s: %s.%s: ERROR: %v", where, strings.TrimPrefix(r.Package, "data."), r.Name, r.Error)
	}
	return s
}

// testFilter loads policies with their tests, and no capabilities file.
func testFilter(abspath string, info fs.FileInfo, _ int) bool {
	if info.IsDir() {
		return false
	}
	name := path.Base(abspath)
	return !policyFile(name) || name == CapabilitiesFile
}
