package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

const lockFile = "lock"

// store keeps the engine's state blob in a directory, in the file named
// for the family it serves.
type store struct {
	dir  string
	file string
	lock *os.File
}

// openStore creates dir if needed and takes an exclusive, non-blocking
// flock on dir/lock: a second daemon on the same directory is refused.
func openStore(dir, file string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another vtpmd", dir)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return &store{dir: dir, file: file, lock: f}, nil
}

func (s *store) unlock() {
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	s.lock.Close()
}

// exists reports whether the directory holds a file named file.
func (s *store) exists(file string) bool {
	_, err := os.Lstat(filepath.Join(s.dir, file))
	return err == nil
}

// load returns the stored blob, or nil when there is none yet.
func (s *store) load() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, s.file))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	return b, nil
}

// save replaces the state file atomically: a crash leaves either the old
// or the new blob, never a mix.
func (s *store) save(blob []byte) error {
	tmp, err := os.CreateTemp(s.dir, s.file+".new-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	name := tmp.Name()
	if _, err := tmp.Write(blob); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("state: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(name, filepath.Join(s.dir, s.file)); err != nil {
		os.Remove(name)
		return fmt.Errorf("state: rename: %w", err)
	}
	// The rename itself is durable only once the directory is synced.
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: fsync dir: %w", err)
	}
	return nil
}
