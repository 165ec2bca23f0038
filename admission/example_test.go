package admission_test

import (
	"context"
	"fmt"
	"os"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/facts"
	"github.com/admitd/admitd/policies"
)

// Load the shipped policy set and decide on a facts document: here a
// candidate that is unreachable and initialized, stopped at the first stage.
func ExampleEngine_Evaluate() {
	ctx := context.Background()
	engine, err := admission.Load(ctx, admission.Source{FS: policies.FS, Name: "embedded"})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Open("../testdata/scenarios/order-unreachable-and-initialized/facts.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	doc, err := facts.Decode(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := admission.NewInput(doc)
	if err != nil {
		fmt.Println(err)
		return
	}
	d := engine.Evaluate(ctx, in)
	fmt.Println("allowed:", d.Allowed, "stopped at:", d.StoppedAt)
	for _, s := range d.Stages {
		fmt.Println(s.Name, s.Outcome)
	}
	// Output:
	// allowed: false stopped at: reachability
	// reachability deny
	// init_state skipped
	// topology skipped
}
