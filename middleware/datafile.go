package middleware

import (
	"fmt"
	"io/fs"
	"os"
)

// OpenDataFile opens a file the server keeps (in its data directory, or a
// log file a stage writes) like os.OpenFile, but never through a symbolic
// link: where name is a link, it fails with an error wrapping
// ErrSymlink and naming the file, and writes nothing anywhere. Only the
// last element of name is refused as a link; directories above it are
// the operator's to choose. It also refuses what is not a regular file
// (a FIFO, a device) with an error wrapping ErrNotRegular.
func OpenDataFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if noFollow == 0 { // no O_NOFOLLOW here: check first (racy, best effort)
		if fi, err := os.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %s", ErrSymlink, name)
		}
	}
	f, err := os.OpenFile(name, flag|noFollow, perm)
	if err != nil {
		if fi, lerr := os.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %s", ErrSymlink, name)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is a %v", ErrNotRegular, name, fi.Mode().Type())
	}
	return f, nil
}

// Reopener is implemented by a stage that appends to a file which log
// rotation may move away (the connection log). ReopenFiles makes it close
// that file and open a new one under the same name before it next writes,
// so that after `mv file file.1` and a signal, records go to a new file.
// The server calls it on SIGHUP, whether or not the reload that follows
// succeeds. It must not block.
type Reopener interface {
	ReopenFiles()
}
