package main

import (
	"os"
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for `admitd serve` when
// GOGC is not set. A decision allocates about 100 KB of short-lived
// evaluation state over a live heap of a few megabytes, so Go's default
// (100) collects every few dozen decisions and spends about a quarter of
// the CPU of a busy node on it. 400 lets the heap grow to five times the
// live data between collections: a few tens of megabytes for a node, for
// that quarter back. GOGC (or GOMEMLIMIT with GOGC=off) overrides it.
const serveGCPercent = 400

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serveGCPercent)
	}
}
