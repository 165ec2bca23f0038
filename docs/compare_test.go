package docs

import (
	"strings"
	"testing"
)

// The shape comparison keeps what a reader relies on and drops what varies.
func TestCompare(t *testing.T) {
	got := strings.Split(`decision 445da448e4e838e1bdcfe57827310efb  policy sha256:55320837a780  config index 9
2026-11-25T19:49:30.765Z [INFO]  admitd.reload: SIGHUP: reloading policies
PASS: 186/186
data.x.test_a: PASS (2.3ms)
tail one
tail two`, "\n")
	cases := []struct {
		name string
		want string
		ok   bool
	}{
		{"same shape", `decision 0123456789abcdef0123456789abcdef policy sha256:aaaaaaaaaaaa config index 9
2026-11-26T01:02:03.1Z [INFO] admitd.reload: SIGHUP: reloading policies
PASS: 186/186
data.x.test_a: PASS (981.7µs)
tail one
tail two`, true},
		{"stale count", `...
PASS: 175/175
...`, false},
		{"ellipsis in a line", `decision … config index 9
...`, true},
		{"lines between", `decision ...
...
tail two`, true},
		{"missing line", `decision ...
admitd.reload: SIGHUP`, false},
		{"whole number differs", `decision … config index 8
...`, false},
		{"more printed than sampled", `decision …`, false},
	}
	for _, c := range cases {
		msg := compare(strings.Split(c.want, "\n"), got)
		if (msg == "") != c.ok {
			t.Errorf("%s: compare = %q, want ok=%v", c.name, msg, c.ok)
		}
	}
}

func TestParse(t *testing.T) {
	doc := "intro\n\n```sh\necho hi\n```\n\n```text\nhi\n```\n\n<!-- doctest: skip (runs the suite) -->\n```sh\nmake test\n```\n\n```sh\n$ echo a\na\n$ echo b\nb\n```\n\n```sh\nno sample\n```\n"
	blocks, err := parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3: %+v", len(blocks), blocks)
	}
	if blocks[0].script != "echo hi" || strings.Join(blocks[0].want, "|") != "hi" || blocks[0].line != 3 {
		t.Errorf("block 0: %+v", blocks[0])
	}
	if blocks[1].script != "echo a\necho b" || strings.Join(blocks[1].want, "|") != "a|b" {
		t.Errorf("session block: %+v", blocks[1])
	}
	if blocks[2].want != nil {
		t.Errorf("a block without a sample has one: %+v", blocks[2])
	}
	if _, err := parse("```sh\nnever closed\n"); err == nil {
		t.Error("an unclosed block parsed")
	}
}

// Ports are replaced where they are whole and mapped back in the output.
func TestSubstitute(t *testing.T) {
	subst := []pair{{":7400", ":41000"}, {"/tmp/", "/x/y/"}}
	s := substitute("curl http://127.0.0.1:7400/readyz :74001 /tmp/admitd-demo", subst)
	if s != "curl http://127.0.0.1:41000/readyz :74001 /x/y/admitd-demo" {
		t.Errorf("substitute: %q", s)
	}
	if back := unsubstitute(s, subst); back != "curl http://127.0.0.1:7400/readyz :74001 /tmp/admitd-demo" {
		t.Errorf("unsubstitute: %q", back)
	}
}
