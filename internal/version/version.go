// Package version holds the admitd release version.
package version

// Version is set at build time with -ldflags "-X ...version.Version=...".
var Version = "0.1.0"
