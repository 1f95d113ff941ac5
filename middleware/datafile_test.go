//go:build unix

package middleware_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// OpenDataFile opens and creates regular files, and refuses a link (live
// or dangling) or a FIFO with an error naming the file, without writing
// anywhere or waiting.
func TestOpenDataFile(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular")
	f, err := middleware.OpenDataFile(regular, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("creating a regular file: %v", err)
	}
	if _, err := f.WriteString("line\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = middleware.OpenDataFile(regular, os.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("reading it back: %v", err)
	}
	f.Close()

	link, dangling := filepath.Join(dir, "link"), filepath.Join(dir, "dangling")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{link, dangling} {
		for _, flag := range []int{os.O_RDONLY, os.O_RDWR | os.O_CREATE | os.O_APPEND} {
			f, err := middleware.OpenDataFile(name, flag, 0o600)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, middleware.ErrSymlink) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s, flag %#x: err = %v, want ErrSymlink naming it", filepath.Base(name), flag, err)
			}
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep\n" {
		t.Errorf("written through the link: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("the dangling link's target was created (%v)", err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = middleware.OpenDataFile(fifo, os.O_RDONLY, 0) // would block without O_NONBLOCK
	if err == nil {
		f.Close()
	}
	if !errors.Is(err, middleware.ErrNotRegular) || !strings.Contains(err.Error(), fifo) {
		t.Errorf("fifo: err = %v, want ErrNotRegular naming it", err)
	}
}
