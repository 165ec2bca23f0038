// Package policies embeds the shipped policy set, used when no policy
// directory is given and ./policies does not exist.
package policies

import "embed"

// FS holds the shipped Rego stages, their tests and capabilities.json.
//
//go:embed *.rego *.json
var FS embed.FS
