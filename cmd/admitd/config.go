package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The configuration file of `admitd serve --config FILE`: one YAML
// mapping whose keys are serve's flag names and whose values are what the
// flags take. Each value goes through its flag's own parsing, so a file
// and a command line accept exactly the same things.

// annCommaList marks a string flag that holds a comma-separated list; a
// file may give it as a YAML list.
const annCommaList = "admitd/comma-list"

// configEntry is one key of the file.
type configEntry struct {
	key  string
	line int
	node *yaml.Node
}

// configKey says whether flag f can be set in a configuration file.
func configKey(f *pflag.Flag) bool {
	return f.Name != "config" && f.Name != "help"
}

// applyConfig sets every flag the file at path names and the command line
// did not: a flag given on the command line wins. A key that is no flag,
// a value its flag refuses and a file that is not one YAML mapping are
// usage errors naming the file, the line and the key, also for a key the
// command line overrides; a file that cannot be read is an error. fresh
// makes a new command with the same flags, to check every value on.
func applyConfig(cmd *cobra.Command, path string, fresh func() *cobra.Command) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	entries, err := parseConfig(raw)
	if err != nil {
		return usageErr(fmt.Errorf("%s: %v", path, err))
	}
	fs := cmd.Flags()
	// Every key is checked before any is applied, so a misspelt key is
	// reported even when the command line sets the flag it meant.
	for _, e := range entries {
		if e.key == "config" {
			return usageErr(fmt.Errorf("%s:%d: config: a configuration file cannot name another", path, e.line))
		}
		if f := fs.Lookup(e.key); f == nil || !configKey(f) {
			return usageErr(fmt.Errorf("%s:%d: unknown key %q%s", path, e.line, e.key, suggestKey(fs, e.key)))
		}
	}
	check := fresh().Flags()
	for _, e := range entries {
		f := fs.Lookup(e.key)
		values, err := configValues(f, e.node)
		if err != nil {
			return usageErr(fmt.Errorf("%s:%d: %s: %v", path, e.line, e.key, err))
		}
		onCommandLine := f.Changed
		target := fs
		if onCommandLine {
			target = check // the command line wins; the value must still be one
		}
		for _, v := range values {
			if err := target.Set(f.Name, v); err != nil {
				return usageErr(fmt.Errorf("%s:%d: %s: invalid value %q: %v", path, e.line, e.key, v, unwrapFlagErr(err)))
			}
		}
		if !onCommandLine && len(values) > 0 {
			_ = fs.SetAnnotation(f.Name, annSource, []string{path})
		}
	}
	return nil
}

// parseConfig reads the file's keys in order; an empty file has none.
func parseConfig(raw []byte) ([]configEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("line %d: a second YAML document; the file holds one mapping of flag names to values", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the file must be a mapping of flag names to values, such as \"id: n1\", not %s", root.Line, nodeKind(root))
	}
	seen := map[string]int{}
	var entries []configEntry
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return nil, fmt.Errorf("line %d: a key must be a flag name, not %s", k.Line, nodeKind(k))
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("line %d: key %q given twice (first on line %d)", k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		entries = append(entries, configEntry{key: k.Value, line: k.Line, node: v})
	}
	return entries, nil
}

// configValues turns a YAML value into the strings to Set on f: one for
// a scalar; for a list flag one per element, or the elements joined by
// commas for a comma-separated flag.
func configValues(f *pflag.Flag, n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	_, slice := f.Value.(pflag.SliceValue)
	_, comma := f.Annotations[annCommaList]
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, errors.New("no value: give one, or leave the key out")
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		if !slice && !comma {
			return nil, fmt.Errorf("takes one %s, not a list", configType(f))
		}
		var values []string
		for _, e := range n.Content {
			if e.Kind == yaml.AliasNode {
				e = e.Alias
			}
			if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return nil, fmt.Errorf("line %d: a list element must be a string, not %s", e.Line, nodeKind(e))
			}
			if comma && strings.Contains(e.Value, ",") {
				return nil, fmt.Errorf("line %d: %q: one value per element, without commas", e.Line, e.Value)
			}
			values = append(values, e.Value)
		}
		if comma && len(values) > 0 {
			return []string{strings.Join(values, ",")}, nil
		}
		return values, nil
	}
	return nil, fmt.Errorf("takes %s, not %s", configType(f), nodeKind(n))
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "an empty value"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// configType says what a key takes, in the file's terms.
func configType(f *pflag.Flag) string {
	if _, ok := f.Annotations[annCommaList]; ok {
		return "list of strings (or one comma-separated string)"
	}
	if e, ok := f.Value.(*enumValue); ok {
		return orList(e.allowed)
	}
	switch t := f.Value.Type(); t {
	case "bool":
		return "boolean"
	case "int":
		return "integer"
	case "uint64":
		return "integer, 0 or more"
	case "float64":
		return "number"
	case "duration":
		return `duration ("500ms", "5s", "2m")`
	case "stringArray", "stringSlice":
		return "list of strings"
	default:
		return t
	}
}

// suggestKey proposes the flag name nearest to a misspelt key.
func suggestKey(fs *pflag.FlagSet, key string) string {
	best, bestD := "", 3 // no further than two edits
	fs.VisitAll(func(f *pflag.Flag) {
		if !configKey(f) {
			return
		}
		if d := editDistance(strings.ToLower(key), f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return " (the keys are serve's flag names, without --: admitd serve --help)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
