package admission

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// viaInterface is the two-step conversion jsonValue replaces.
func viaInterface(raw []byte) (ast.Value, error) {
	var x any
	if err := util.UnmarshalJSON(raw, &x); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(x)
}

func sameValue(t *testing.T, raw []byte) {
	t.Helper()
	want, werr := viaInterface(raw)
	got, gerr := jsonValue(raw)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: error mismatch: jsonValue %v, util %v", raw, gerr, werr)
	}
	if werr != nil {
		return
	}
	if got.Compare(want) != 0 || got.Hash() != want.Hash() {
		t.Fatalf("%q:\n got %v\nwant %v", raw, got, want)
	}
}

func TestJSONValueMatchesUnmarshal(t *testing.T) {
	files, _ := filepath.Glob("../testdata/scenarios/*/facts.json")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := viaInterface(raw); err != nil {
			continue // the error-* scenarios the decoder refuses first
		}
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) { sameValue(t, raw) })
	}
	var big strings.Builder
	big.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&big, `"k%d": %d, `, i%25, i)
	}
	big.WriteString(`"last": true}`)
	for _, s := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.50`, `1e3`, `-2.5E-3`, `12345678901234567890123`,
		`"plain"`, `"esc\"aped\\ \/ \b\f\n\r\t"`, `"\u00e9\u4e2d\ud83d\ude00"`, `"caf\u00e9 ok"`, "\"caf\xc3\xa9\"",
		"\"bad \xff utf8\"", `"\ud800 lone surrogate"`,
		` { "a" : [ 1 , { "b" : null } , [ ] ] , "c" : { } } `,
		`{"dup": 1, "dup": 2}`, `{"a": {"x": 1}, "a": [1]}`, big.String(),
		`[1, 2, 3, "x", [true, false], {"k": "v"}]`,
		`{"a": 1} x`, `{"a": }`, `[1,]`, `{"a" 1}`, `01`, `1.`, `-`, `"unterminated`, `tru`, ``,
	} {
		sameValue(t, []byte(s))
	}
}

func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{`{"a": [1, "x", null, true]}`, `"\u00e9"`, `{"a":1,"a":2}`, `-1.5e10`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := viaInterface(raw)
		got, gerr := jsonValue(raw)
		if werr != nil {
			return // jsonValue only ever sees documents the strict decoder accepted
		}
		if gerr != nil {
			t.Fatalf("%q: jsonValue failed on valid JSON: %v", raw, gerr)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("%q:\n got %v\nwant %v", raw, got, want)
		}
	})
}
