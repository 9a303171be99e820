package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the lock a working embedded service holds in its data
// directory.
const LockFile = "imgd.lock"

// lockDataDir takes an exclusive lock on the data directory, so that one
// process at most works the embedded queue. The kernel releases it when
// the process dies, however it dies.
func lockDataDir(dir string) (unlock func() error, _ error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another imgd process with workers (lock %s); "+
				"run one per data directory, or use PostgreSQL to run several", dir, path)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f.Close, nil
}
