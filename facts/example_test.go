package facts_test

import (
	"fmt"
	"strings"

	"github.com/admitd/admitd/facts"
)

// Decode is strict: a document with a field the schema does not know is
// refused, so a typo never reads as a missing fact.
func ExampleDecode() {
	_, err := facts.Decode(strings.NewReader(`{"schema": "admitd.facts/v1", "candidate": {"id": "n4", "raft_adr": "127.0.0.1:7431"}}`))
	fmt.Println(err)
	// Output: malformed facts document: json: unknown field "raft_adr"
}
