// Command covercheck reads `opa test --coverage` JSON on stdin and fails when
// the total coverage is below -min percent.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	min := flag.Float64("min", 90, "minimum coverage percent")
	flag.Parse()
	var report struct {
		Coverage float64 `json:"coverage"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&report); err != nil {
		fmt.Fprintln(os.Stderr, "covercheck: cannot read coverage report:", err)
		os.Exit(1)
	}
	fmt.Printf("policy coverage: %.2f%% (minimum %.0f%%)\n", report.Coverage, *min)
	if report.Coverage < *min {
		os.Exit(1)
	}
}
