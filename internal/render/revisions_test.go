package render

import (
	"strings"
	"testing"

	"github.com/admitd/admitd/facts"
)

func TestPolicyAgreement(t *testing.T) {
	srv := func(id, rev string) facts.Server { return facts.Server{ID: id, PolicyRevision: rev} }
	cases := []struct {
		servers []facts.Server
		agree   bool
		text    string
	}{
		{[]facts.Server{srv("n1", "sha256:aa"), srv("n2", "sha256:aa")}, true, "all 2 members run sha256:aa"},
		{[]facts.Server{srv("n1", "sha256:aa"), srv("n2", "sha256:bb")}, false, "DIFFER: sha256:aa on n1; sha256:bb on n2"},
		{[]facts.Server{srv("n1", "sha256:aa"), srv("n2", "")}, false, "unknown on n2"},
		{nil, false, "no members"},
	}
	for _, c := range cases {
		agree, text := PolicyAgreement(facts.Topology{Servers: c.servers})
		if agree != c.agree || !strings.Contains(text, c.text) {
			t.Errorf("%v: got %v %q", c.servers, agree, text)
		}
	}
}
