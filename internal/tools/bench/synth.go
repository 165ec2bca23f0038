package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// withServers returns the facts document with its topology replaced by n
// healthy voters: the template's leader first, then servers on addresses
// that cannot collide with the candidate's. The decision stays an allow.
func withServers(facts []byte, n int) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(facts, &doc); err != nil {
		return nil, err
	}
	topo, ok := doc["topology"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("facts have no topology")
	}
	leader, _ := topo["leader"].(map[string]any)
	servers := make([]any, 0, n)
	server := func(id, addr any) map[string]any {
		return map[string]any{"id": id, "address": addr, "suffrage": "voter", "healthy": true,
			"canonical_addresses": []any{addr}, "address_error": "", "last_index": 0, "lag": 0}
	}
	servers = append(servers, server(leader["id"], leader["address"]))
	for i := 2; i <= n; i++ {
		servers = append(servers, server(fmt.Sprintf("s%03d", i), fmt.Sprintf("10.9.%d.%d:7401", i/250, i%250+1)))
	}
	topo["servers"] = servers
	return json.Marshal(doc)
}

// Rule shapes for the extra site rules.
const (
	// indexed rules compare an input field with a constant, the shape of
	// deny lists (retired ids, banned addresses, versions): OPA's rule
	// index picks the matching rules without evaluating the others.
	shapeIndexed = "indexed"
	// scanned rules call a builtin on input (contains), which the index
	// cannot see through: every rule body is evaluated. (OPA does index
	// startswith, so that would not do.)
	shapeScanned = "scanned"
)

// siteRules writes a copy of the policy set (runtime files only) with a
// site stage of n extra deny rules of the given shape appended to the
// pipeline. None of the rules matches the benchmark's candidate.
func siteRules(src, dst string, n int, shape string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, "_test.rego") ||
			!(strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, ".json")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if name == "pipeline.rego" && n > 0 {
			if b, err = appendSiteStage(b); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	return os.WriteFile(filepath.Join(dst, "site.rego"), []byte(siteModule(n, shape)), 0o644)
}

var stagesRE = regexp.MustCompile(`(?m)^stages := \[([^\]]*)\]`)

func appendSiteStage(pipeline []byte) ([]byte, error) {
	if !stagesRE.Match(pipeline) {
		return nil, fmt.Errorf("pipeline.rego: no `stages := [...]` line to append the site stage to")
	}
	return stagesRE.ReplaceAll(pipeline, []byte(`stages := [$1, "site"]`)), nil
}

func siteModule(n int, shape string) string {
	var b strings.Builder
	b.WriteString("package admitd.stages.site\n\ndefault allow := false\n\nallow if count(deny) == 0\n")
	for i := 1; i <= n; i++ {
		var cond, code string
		switch {
		case shape == shapeScanned:
			cond, code = fmt.Sprintf("contains(input.candidate.id, %q)", fmt.Sprintf("-quarantine-%d-", i)), "SITE_QUARANTINED"
		case i%3 == 0:
			cond, code = fmt.Sprintf("input.candidate.raft_addr == %q", fmt.Sprintf("10.%d.%d.%d:7401", 200+i/62500, i/250%250, i%250)), "SITE_BANNED_ADDRESS"
		case i%3 == 1:
			cond, code = fmt.Sprintf("input.candidate.id == %q", fmt.Sprintf("retired-%d", i)), "SITE_RETIRED_ID"
		default:
			cond, code = fmt.Sprintf("input.init_state.version == %q", fmt.Sprintf("0.0.%d", i)), "SITE_BANNED_VERSION"
		}
		fmt.Fprintf(&b, "\ndeny contains {\"code\": %q, \"message\": sprintf(\"candidate %%s: site rule %d\", [input.candidate.id])} if {\n\t%s\n}\n", code, i, cond)
	}
	return b.String()
}
