package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// Load reads the state file; a missing file is an empty state.
func (f *FileStore) Load() (*State, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: state file %s: %w", ErrState, f.Path, err)
	}
	st := newState()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("%w: state file %s is corrupt: %w (it was left in place; fix it or move it away to start from the configuration alone)", ErrState, f.Path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: state file %s has version %d, this server reads version %d", ErrState, f.Path, st.Version, stateVersion)
	}
	return st, st.valid(f.Path)
}

// Save writes the state atomically and durably.
func (f *FileStore) Save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: writing %s: %w", ErrState, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: syncing %s: %w", ErrState, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: syncing %s: %w", ErrState, dir, err)
	}
	return nil
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
