package facts

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: the strict decoder never panics, and whatever it accepts is
// a valid document that survives encoding and decoding again unchanged.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/scenarios/*/facts.json")
	if len(seeds) == 0 {
		f.Fatal("no seed scenarios")
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec, err := DecodeBytes(data)
		if err != nil {
			return
		}
		if dec.Doc.Schema != Schema || dec.Doc.Candidate.validateFor(dec.Doc.Phase) != nil {
			t.Fatalf("accepted an invalid document: %+v", dec.Doc)
		}
		first, err := json.Marshal(dec.Doc)
		if err != nil {
			t.Fatalf("decoded but not encodable: %v", err)
		}
		again, err := DecodeBytes(first)
		if err != nil {
			t.Fatalf("re-encoded document does not decode: %v\n%s", err, first)
		}
		second, _ := json.Marshal(again.Doc)
		if !bytes.Equal(first, second) {
			t.Fatalf("encoding is not stable:\n%s\n%s", first, second)
		}
	})
}
