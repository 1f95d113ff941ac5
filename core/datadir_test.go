package core

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// A data directory others may write in is refused, by the start-up
// preparation and by the check alike, with an error naming it.
func TestDataDirOpenToOthersRefused(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o750, true},
		{0o755, true},
		{0o770, false},
		{0o720, false},
		{0o777, false},
		{0o702, false},
		{0o777 | fs.ModeSticky, false}, // /tmp-like: others can still take the names not yet made
	} {
		for name, fn := range map[string]func(string) error{"prepare": PrepareDataDir, "check": CheckDataDir} {
			t.Run(tc.mode.String()+"/"+name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "data")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.mode); err != nil {
					t.Fatal(err)
				}
				err := fn(dir)
				if tc.ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
				} else if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "writable by group or others") {
					t.Fatalf("err = %v, want ErrDataDir naming %s and why", err, dir)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("left behind: %v", ents)
				}
			})
		}
	}
}

// A directory owned by another (non-root) user is that user's to fill.
func TestDataDirOwnedByAnotherRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	err := PrepareDataDir(dir)
	if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), "uid 54321") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want ErrDataDir naming %s and its owner", err, dir)
	}
}

// The server creates a missing data directory itself, mode 0700; the
// check proves it could and leaves nothing.
func TestDataDirCreated(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "var", "lib", "socks5d")
	if err := CheckDataDir(dir); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "var")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the check left %s behind (%v)", filepath.Join(base, "var"), err)
	}
	if err := PrepareDataDir(dir); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want a directory closed to others (0700 before the umask)", d, fi.Mode())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the probe was left behind: %v", ents)
	}
	if err := PrepareDataDir(dir); err != nil { // an existing one
		t.Fatalf("prepare again: %v", err)
	}
}

// What cannot be a data directory is refused, naming it.
func TestDataDirUnusable(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"a file":          file,
		"under a file":    filepath.Join(file, "data"),
		"deep in a file":  filepath.Join(file, "a", "b"),
		"a dangling link": filepath.Join(base, "dangling"),
	} {
		if name == "a dangling link" {
			if err := os.Symlink(filepath.Join(base, "nowhere"), dir); err != nil {
				t.Fatal(err)
			}
		}
		for fn, f := range map[string]func(string) error{"prepare": PrepareDataDir, "check": CheckDataDir} {
			if err := f(dir); !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), dir) {
				t.Errorf("%s, %s: err = %v, want ErrDataDir naming %s", name, fn, err, dir)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dangling link's target was created (%v)", err)
	}
}

// A state file that is a link is refused, not read through: whoever
// planted it would choose the users.
func TestStateFileLinkRefused(t *testing.T) {
	dir := t.TempDir()
	planted := filepath.Join(t.TempDir(), "planted.json")
	if err := os.WriteFile(planted, []byte(`{"version":1,"users":{},"deleted_users":null,"settings":{},"lists":{}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.json")
	if err := os.Symlink(planted, path); err != nil {
		t.Fatal(err)
	}
	store := NewFileStore(path)
	if _, err := store.Load(); !errors.Is(err, middleware.ErrSymlink) || !errors.Is(err, ErrState) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load through a link: err = %v, want ErrState and middleware.ErrSymlink naming %s", err, path)
	}
	// A save replaces the name, never what a link points to.
	before, _ := os.ReadFile(planted)
	if err := store.Save(newState()); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(planted); string(after) != string(before) {
		t.Errorf("Save wrote through the link: %q", after)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("state file after Save: %v (%v), want a regular file", fi, err)
	}
}

// testReopen counts ReopenFiles calls in the shared pool.
type testReopen struct{ n *atomic.Int64 }

func (r testReopen) Wrap(next middleware.Handler) middleware.Handler { return next }
func (r testReopen) ReopenFiles()                                    { r.n.Add(1) }

func init() {
	middleware.Register(middleware.Info{Type: "test.reopen", New: func(p middleware.Params) (middleware.Middleware, error) {
		return testReopen{n: middleware.Get(p.Shared, p.Name, func() *atomic.Int64 { return new(atomic.Int64) })}, nil
	}})
}

// ReopenFiles reaches every stage of the live chain that reopens files.
func TestRuntimeReopenFiles(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.reopen"), stage("test.wrap")), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt.ReopenFiles()
	rt.ReopenFiles()
	var n int64
	for _, st := range rt.Snapshot().Stages {
		if r, ok := st.Middleware.(testReopen); ok {
			n = r.n.Load()
		}
	}
	if n != 2 {
		t.Errorf("ReopenFiles reached the stage %d times, want 2", n)
	}
}
