package connlog

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/socks5d/socks5d/middleware"
)

// Reading the file back.
const (
	// readBlock is how much of a file is read at a time, from its end.
	readBlock = 64 << 10
	// maxLine bounds a line read back; a longer one is corrupt (records
	// are a few hundred bytes).
	maxLine = 1 << 20
)

// readNewest returns up to n records from out's file and then its rotated
// files, newest first, with the number of lines it skipped as corrupt. A
// missing file is not an error: there is nothing to read yet. A file that
// is a symbolic link is not read (the error wraps middleware.ErrSymlink).
func readNewest(out *fileConfig, n int) (recs []middleware.Record, corrupt int64, err error) {
	for i := 0; i <= out.keep && len(recs) < n; i++ {
		f, err := middleware.OpenDataFile(rotated(out.path, i), os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				continue // rotated, and stopped before a new file was made
			}
			break
		}
		if err != nil {
			return recs, corrupt, err
		}
		err = scanBackward(f, func(line []byte) bool {
			if len(bytes.TrimSpace(line)) == 0 {
				return true
			}
			rec, err := parseLine(line)
			if err != nil {
				corrupt++
				return true
			}
			recs = append(recs, rec)
			return len(recs) < n
		}, func() { corrupt++ })
		f.Close()
		if err != nil {
			return recs, corrupt, err
		}
	}
	return recs, corrupt, nil
}

// scanBackward calls line for each line of f, the last first, until it
// returns false. A line longer than maxLine is skipped and reported to
// overlong instead. Lines do not include their '\n' and are valid only
// during the call.
func scanBackward(f *os.File, line func([]byte) bool, overlong func()) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pos := fi.Size()
	var carry []byte // the end of a line whose start is before pos
	skipping := false
	buf := make([]byte, readBlock)
	for pos > 0 {
		k := int64(min(readBlock, pos))
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		data := make([]byte, 0, int(k)+len(carry))
		data = append(append(data, buf[:k]...), carry...)
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				break
			}
			if skipping {
				skipping = false
			} else if !line(data[i+1:]) {
				return nil
			}
			data = data[:i]
		}
		carry = data
		if len(carry) > maxLine {
			if !skipping {
				overlong()
			}
			carry, skipping = nil, true
		}
	}
	if !skipping && len(carry) > 0 {
		line(carry)
	}
	return nil
}
