//go:build unix

package raftglue

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive, non-blocking lock on dir, so a second node on
// the same data dir fails fast instead of hanging on the wal's bolt lock.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftglue: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raftglue: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrDataDirInUse, dir, err)
	}
	return f, nil
}

// unlockDir releases lockDir's lock; closing the file drops the flock.
func unlockDir(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}
