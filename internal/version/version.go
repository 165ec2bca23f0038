// Package version tells which build of admitd is running: the release
// version, the module version and commit the binary was built from, and
// the Go version that built it.
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release version; a release build sets it with
// -ldflags "-X github.com/admitd/admitd/internal/version.Version=...".
var Version = "0.1.0"

// Build is what the binary knows of its own build.
type Build struct {
	Version   string `json:"version"`     // the release version
	Module    string `json:"module"`      // the main module's version ("(devel)" for a local build)
	Commit    string `json:"commit"`      // vcs.revision, "" when not built from a checkout
	Modified  bool   `json:"modified"`    // vcs.modified: the checkout had local changes
	CommitAt  string `json:"commit_time"` // vcs.time
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

var (
	once  sync.Once
	build Build
)

// Info reads the build information once (runtime/debug.ReadBuildInfo).
func Info() Build {
	once.Do(func() { build = read() })
	return build
}

func read() Build {
	b := Build{Version: Version, Module: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Module = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.CommitAt = s.Value
		}
	}
	return b
}
