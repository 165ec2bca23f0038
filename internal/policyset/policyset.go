// Package policyset chooses which policy set a command runs: a directory
// given by flag, ./policies when present, or the shipped set embedded in the
// binary.
package policyset

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/admitd/admitd/admission"
	"github.com/admitd/admitd/policies"
)

// DefaultDir is looked for when no directory is given.
const DefaultDir = "./policies"

// EmbeddedName names the shipped set in messages and in `admitd version`.
const EmbeddedName = "embedded"

// Resolve returns the source for dir; an empty dir means the default.
func Resolve(dir string) (admission.Source, error) {
	caps, err := ShippedCapabilities()
	if err != nil {
		return admission.Source{}, err
	}
	if dir == "" {
		if st, err := os.Stat(DefaultDir); err == nil && st.IsDir() {
			dir = DefaultDir
		}
	}
	if dir == "" {
		return admission.Source{FS: policies.FS, Name: EmbeddedName, Capabilities: caps}, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return admission.Source{}, fmt.Errorf("policies: %v", err)
	}
	if !st.IsDir() {
		return admission.Source{}, fmt.Errorf("policies: %s is not a directory", dir)
	}
	src := admission.DirSource(dir)
	src.Capabilities = caps
	return src, nil
}

// ShippedCapabilities is the builtin allow-list shipped with the binary,
// used for directories that bring none of their own.
func ShippedCapabilities() (*ast.Capabilities, error) {
	b, err := fs.ReadFile(policies.FS, admission.CapabilitiesFile)
	if err != nil {
		return nil, fmt.Errorf("shipped capabilities: %v", err)
	}
	return ast.LoadCapabilitiesJSON(bytes.NewReader(b))
}
