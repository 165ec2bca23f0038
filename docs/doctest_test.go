// Package docs holds the project's documents. Its test runs their shell
// blocks as written, one bash session per document, and compares each
// block's sample output with what the block prints, so a walkthrough that
// breaks when pasted, or a sample gone stale, fails the build.
//
// The conventions, for writers:
//   - every ```sh block runs, in document order, in one bash session with
//     `set -eo pipefail` (a command expected to fail is written
//     `cmd || echo "exit $?"`), unless the line before it is
//     <!-- doctest: skip (why) -->;
//   - a ```text block right after a ```sh block is that block's output
//     (stdout and stderr); in a ```sh block written as a session, lines
//     starting with "$ " are commands and the others their output;
//   - outputs are compared in shape: runs of blanks are one blank,
//     timestamps, hex strings of 12 or more digits, durations and decimal
//     numbers are wildcards, "..." or "…" within a line matches anything, and a line
//     that is only "..." matches any number of lines; whole numbers must
//     match (a stale test count fails);
//   - the session runs in a copy of the repository, every 127.0.0.1 port
//     is replaced by a free one and /tmp/ by a directory of the test's own,
//     and the output is mapped back before it is compared.
package docs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/admitd/admitd/internal/testutil"
)

// documents are run in parallel, each in its own session.
var documents = []string{"../README.md", "operations.md", "policies.md", "configuration.md"}

// sessionTimeout bounds one document's whole session; each wait inside a
// walkthrough has its own, shorter, --timeout.
const sessionTimeout = 8 * time.Minute

const skipMarker = "<!-- doctest: skip"

// block is one ```sh block and, when the document gives one, its output.
type block struct {
	line   int      // where the block starts, for messages
	script string   // the commands
	want   []string // the sample output; nil when there is none
}

func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("the walkthroughs start clusters")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run the documents' shell blocks")
	}
	for _, doc := range documents {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			t.Parallel()
			blocks, err := parseFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(blocks) == 0 {
				t.Fatalf("%s has no shell blocks", doc)
			}
			runDocument(t, doc, blocks)
		})
	}
}

func parseFile(path string) ([]block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(string(b))
}

// parse finds the ```sh blocks of a Markdown document and their outputs.
func parse(doc string) ([]block, error) {
	lines := strings.Split(doc, "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		body, end, err := fenced(lines, i)
		if err != nil {
			return nil, err
		}
		skip := i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), skipMarker)
		start := i + 1
		i = end
		if skip {
			continue
		}
		b := fromBody(start, body)
		if out, oend, ok := outputAfter(lines, end); ok {
			if b.want != nil {
				return nil, fmt.Errorf("line %d: a session block has its own output and a ```text block", b.line)
			}
			b.want, i = out, oend
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// fenced returns the lines inside the fence opened at lines[start].
func fenced(lines []string, start int) ([]string, int, error) {
	for j := start + 1; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) == "```" {
			return lines[start+1 : j], j, nil
		}
	}
	return nil, 0, fmt.Errorf("line %d: the code block is never closed", start+1)
}

// outputAfter reads a ```text block that follows the block closed at end,
// with only blank lines between.
func outputAfter(lines []string, end int) ([]string, int, bool) {
	j := end + 1
	for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
		j++
	}
	if j >= len(lines) || strings.TrimSpace(lines[j]) != "```text" {
		return nil, 0, false
	}
	out, oend, err := fenced(lines, j)
	if err != nil {
		return nil, 0, false
	}
	return append([]string{}, out...), oend, true
}

// fromBody splits a session ("$ cmd" then its output) or takes a script.
func fromBody(line int, body []string) block {
	b := block{line: line}
	session := len(body) > 0 && strings.HasPrefix(body[0], "$ ")
	if !session {
		b.script = strings.Join(body, "\n")
		return b
	}
	var cmds []string
	b.want = []string{}
	for _, l := range body {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			cmds = append(cmds, c)
			continue
		}
		b.want = append(b.want, l)
	}
	b.script = strings.Join(cmds, "\n")
	return b
}

// runDocument runs the blocks in one bash session and checks each output.
func runDocument(t *testing.T, doc string, blocks []block) {
	work := copyRepo(t)
	tmp := t.TempDir()
	subst := substitutions(t, blocks, tmp)
	script := sessionScript(blocks, subst)
	out, err := runSession(t, work, script)
	outputs := splitOutputs(unsubstitute(out, subst), len(blocks))
	ran := len(outputs)
	for i, b := range blocks[:min(ran, len(blocks))] {
		if b.want == nil {
			continue
		}
		if msg := compare(b.want, outputs[i]); msg != "" {
			t.Errorf("%s:%d: the output differs from the sample: %s\n--- printed:\n%s", doc, b.line, msg, strings.Join(outputs[i], "\n"))
		}
	}
	if err != nil {
		last := blocks[max(ran-1, 0)]
		printed := ""
		if ran > 0 {
			printed = strings.Join(outputs[ran-1], "\n")
		}
		t.Fatalf("%s:%d: the block failed: %v\n--- script:\n%s\n--- printed:\n%s", doc, last.line, err, last.script, printed)
	}
	if ran != len(blocks) {
		t.Fatalf("%s: %d of %d blocks ran", doc, ran, len(blocks))
	}
}

const marker = "@@doctest-block@@"

// sessionScript is the document's blocks with a marker before each one.
func sessionScript(blocks []block, subst []pair) string {
	var b strings.Builder
	b.WriteString("set -eo pipefail\nexec 2>&1\n")
	b.WriteString("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	for _, bl := range blocks {
		fmt.Fprintf(&b, "echo %s\n%s\n", marker, substitute(bl.script, subst))
	}
	fmt.Fprintf(&b, "echo %s\n", marker)
	return b.String()
}

// runSession runs bash in its own process group and kills the group when
// the session ends, so servers started with & never outlive the test.
func runSession(t *testing.T, dir, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("the session ran out of its %s: %w", sessionTimeout, err)
	}
	return out.String(), err
}

// splitOutputs cuts the session's output at the markers: element i is what
// block i printed; a block that did not finish is the last element.
func splitOutputs(out string, n int) [][]string {
	parts := strings.Split(out, marker+"\n")
	if len(parts) > 0 {
		parts = parts[1:] // before the first block: nothing of ours
	}
	var outs [][]string
	for i, p := range parts {
		if i == n && p == "" {
			break // the closing marker
		}
		outs = append(outs, strings.Split(strings.TrimSuffix(p, "\n"), "\n"))
	}
	return outs
}

// pair maps a value written in the documents to the one the test uses.
type pair struct{ doc, test string }

var portPattern = regexp.MustCompile(`(?:127\.0\.0\.1|localhost):([0-9]{4,5})\b`)

// substitutions gives every port the blocks use a free one, and /tmp/ a
// directory of the test's own.
func substitutions(t *testing.T, blocks []block, tmp string) []pair {
	seen := map[string]bool{}
	var subst []pair
	for _, b := range blocks {
		for _, m := range portPattern.FindAllStringSubmatch(b.script, -1) {
			if seen[m[1]] {
				continue
			}
			seen[m[1]] = true
			subst = append(subst, pair{":" + m[1], ":" + freePort(t)})
		}
	}
	return append(subst, pair{"/tmp/", tmp + "/"})
}

func substitute(s string, subst []pair) string {
	for _, p := range subst {
		s = replacePort(s, p.doc, p.test)
	}
	return s
}

func unsubstitute(s string, subst []pair) string {
	for _, p := range subst {
		s = replacePort(s, p.test, p.doc)
	}
	return s
}

// replacePort replaces old only where it is not followed by a digit, so
// :7400 is not found inside :74001.
func replacePort(s, old, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(old)
		b.WriteString(s[:i])
		if strings.HasPrefix(old, ":") && j < len(s) && s[j] >= '0' && s[j] <= '9' {
			b.WriteString(old)
		} else {
			b.WriteString(repl)
		}
		s = s[j:]
	}
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	return port
}

// copyRepo copies the repository's files (tracked and new, not ignored) to
// a directory of the test's own: walkthroughs write data directories and
// edit policies, and must not do so in the tree under test.
func copyRepo(t *testing.T) string {
	dst := t.TempDir()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = ".."
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("listing the repository's files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if err := copyFile(filepath.Join("..", name), filepath.Join(dst, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, info.Mode().Perm())
}

var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})`), "<time>"},
	{regexp.MustCompile(`\b[0-9a-f]{12,}\b`), "<hex>"},
	// A duration's unit changes with its size (981.7µs, 1.2ms).
	{regexp.MustCompile(`\b[0-9]+(\.[0-9]+)?(ns|µs|us|ms|s)\b`), "<dur>"},
	{regexp.MustCompile(`[0-9]+\.[0-9]+`), "<num>"},
	{regexp.MustCompile(`[ \t]+`), " "},
}

// normalize reduces a line to its shape.
func normalize(l string) string {
	l = strings.TrimRight(l, " \t\r")
	for _, n := range normalizers {
		l = n.re.ReplaceAllString(l, n.with)
	}
	return l
}

var ellipsis = regexp.MustCompile(`\.\.\.|…`)

// linePattern turns a sample line into a regular expression.
func linePattern(want string) *regexp.Regexp {
	parts := ellipsis.Split(normalize(want), -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

func anyLines(l string) bool {
	l = strings.TrimSpace(l)
	return l == "..." || l == "…"
}

// compare matches the sample against the printed lines; "" when they agree,
// else the first sample line that found no match.
func compare(want, got []string) string {
	for len(want) > 0 && strings.TrimSpace(want[len(want)-1]) == "" {
		want = want[:len(want)-1]
	}
	for len(got) > 0 && strings.TrimSpace(got[len(got)-1]) == "" {
		got = got[:len(got)-1]
	}
	pats := make([]*regexp.Regexp, len(want))
	for i, w := range want {
		if !anyLines(w) {
			pats[i] = linePattern(w)
		}
	}
	norm := make([]string, len(got))
	for i, g := range got {
		norm[i] = normalize(g)
	}
	best := 0
	if match(want, pats, norm, 0, 0, &best) {
		return ""
	}
	if best >= len(want) {
		return "the output has more lines than the sample"
	}
	return fmt.Sprintf("no match for sample line %d: %q", best+1, want[best])
}

// match is glob matching over lines; best records how far the sample got.
func match(want []string, pats []*regexp.Regexp, got []string, i, j int, best *int) bool {
	*best = max(*best, i)
	if i == len(want) {
		return j == len(got)
	}
	if pats[i] == nil {
		for k := j; k <= len(got); k++ {
			if match(want, pats, got, i+1, k, best) {
				return true
			}
		}
		return false
	}
	return j < len(got) && pats[i].MatchString(got[j]) && match(want, pats, got, i+1, j+1, best)
}
