package core

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The data directory holds what the server writes: the state file (users
// and settings changed at run time, which decide who may log in) and the
// connection log. Whoever may create entries in it can plant a link or a
// state file there, so the server refuses a directory others may write
// in, and opens every file in it without following links
// (middleware.OpenDataFile).

// PrepareDataDir readies dir at start-up: it creates it, mode 0700 (and
// missing parents likewise), when it is missing; then it refuses a
// directory that others may write in (group- or world-writable, or owned
// by someone other than the server's user or root), and proves it
// writable by creating and removing a probe file. Errors wrap ErrDataDir
// and name the directory.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: data_dir %s cannot be created: %w", ErrDataDir, dir, err)
	}
	return checkDataDir(dir)
}

// CheckDataDir makes PrepareDataDir's checks for `socks5d -t` and leaves
// nothing behind: a missing directory is created for the probe and
// removed again, with the parents it needed.
func CheckDataDir(dir string) error {
	created, err := mkdirAllCreated(dir)
	defer func() {
		for _, d := range created { // deepest first
			_ = os.Remove(d)
		}
	}()
	if err != nil {
		return fmt.Errorf("%w: data_dir %s cannot be created: %w", ErrDataDir, dir, err)
	}
	return checkDataDir(dir)
}

// mkdirAllCreated is os.MkdirAll(dir, 0o700) that returns the directories
// it created, deepest first.
func mkdirAllCreated(dir string) (created []string, err error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil {
			return created, err
		}
		created = append([]string{missing[i]}, created...)
	}
	if len(missing) == 0 {
		// It exists (or cannot be looked at): let the checks say what it is.
		return nil, nil
	}
	return created, nil
}

// checkDataDir checks an existing data directory: a directory (a link to
// one is the operator's choice), closed to other users, writable.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: data_dir %s: %w", ErrDataDir, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: data_dir %s is not a directory", ErrDataDir, dir)
	}
	if why := openToOthers(fi); why != "" {
		return fmt.Errorf("%w: data_dir %s %s, so another local user could plant links or files among the server's (state, connection log); make it the server's own, mode 0700 (chmod go-w %s)", ErrDataDir, dir, why, dir)
	}
	probe, err := os.CreateTemp(dir, ".socks5d-probe-*") // O_CREATE|O_EXCL: never through a link
	if err != nil {
		return fmt.Errorf("%w: data_dir %s is not writable: %w", ErrDataDir, dir, err)
	}
	err = errors.Join(probe.Close(), os.Remove(probe.Name()))
	if err != nil {
		return fmt.Errorf("%w: data_dir %s: removing the probe file: %w", ErrDataDir, dir, err)
	}
	return nil
}
