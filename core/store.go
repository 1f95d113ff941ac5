package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/socks5d/socks5d/middleware"
)

// Store keeps what administrators change at run time (users, settings,
// list settings) so that it survives a restart. The file store is the one
// there is; the interface stays this small so that several instances can
// later share one store (Watch feeding Runtime.Update).
type Store interface {
	// Load returns the saved state, or an empty state when nothing was
	// ever saved. A state that cannot be read is an error naming where
	// and why; it is never replaced by defaults.
	Load() (*State, error)
	// Save replaces the saved state atomically and durably: when it
	// returns nil, the new state is on disk; when it fails, the old one is
	// still there, whole.
	Save(*State) error
}

// FileStore is a Store in one JSON file, written atomically: a temporary
// file in the same directory, fsync, rename over the old file, fsync the
// directory. A crash at any moment leaves the old state or the new one.
type FileStore struct {
	Path string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store kept in path (its directory is created,
// 0700, on the first save).
func NewFileStore(path string) *FileStore { return &FileStore{Path: path} }

// Load reads the state file; a missing file is an empty state. A state
// file that is a symbolic link is refused (the error wraps
// middleware.ErrSymlink), never read through.
func (f *FileStore) Load() (*State, error) {
	data, err := readDataFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: state file %s: %w", ErrState, f.Path, err)
	}
	return parseState(data, f.Path)
}

// Save writes the state atomically and durably. The temporary file is
// created with O_CREATE|O_EXCL under a random name, so a link planted in
// its place is never written through; the rename then replaces the state
// file's name itself (a link there included), never what a link points to.
func (f *FileStore) Save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	data = append(data, '\n')
	if err := writeFileAtomic(f.Path, data); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

// writeFileAtomic replaces path with data atomically and durably: a
// temporary file in the same directory (made 0700 if missing), fsync,
// rename, fsync of the directory. The temporary file is created with
// O_CREATE|O_EXCL under a random name, so a link planted in its place is
// never written through; the rename replaces the name itself (a link
// there included), never what a link points to.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// readDataFile reads a whole file without following a link in its place.
func readDataFile(name string) ([]byte, error) {
	file, err := middleware.OpenDataFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(file)
}

// RemoveStale deletes temporary files that a save interrupted by a crash
// left beside the state file (each would hold a copy of the state). Only
// the server that owns the data directory may call it, at start.
func (f *FileStore) RemoveStale() error {
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".*.tmp"))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range stale {
		errs = append(errs, os.Remove(p))
	}
	return errors.Join(errs...)
}
