package core

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

func TestFileCounters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", CountersFile)
	c := NewFileCounters(path)
	if v, err := c.Add("quota/q/day:2026-12-03/alice", 100); err != nil || v != 100 {
		t.Fatalf("Add = %d, %v", v, err)
	}
	if v, _ := c.Add("quota/q/day:2026-12-03/alice", 23); v != 123 {
		t.Fatalf("Add = %d, want 123", v)
	}
	_, _ = c.Add("quota/q/day:2026-12-03/alice2", 5)
	_, _ = c.Add("quota/q/day:2026-12-02/bob", 7)

	// A new process reads what the last one saved.
	c2 := NewFileCounters(path)
	m, err := c2.Counters("quota/q/day:2026-12-03/")
	if err != nil || len(m) != 2 || m["quota/q/day:2026-12-03/alice"] != 123 || m["quota/q/day:2026-12-03/alice2"] != 5 {
		t.Fatalf("Counters after a restart = %v, %v", m, err)
	}
	if err := c2.Delete("quota/q/day:2026-12-02/"); err != nil {
		t.Fatal(err)
	}
	if m, _ := NewFileCounters(path).Counters(""); len(m) != 2 {
		t.Fatalf("after Delete: %v", m)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("counters file: %v, mode %v", err, fi.Mode())
	}
}

// A corrupt counters file is an error naming it, left in place; a counter
// that cannot be saved keeps its old value.
func TestFileCountersErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CountersFile)
	if err := os.WriteFile(path, []byte(`{"a": 1} trailing`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileCounters(path).Add("a", 1)
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != `{"a": 1} trailing` {
		t.Fatal("the corrupt file was changed")
	}

	good := filepath.Join(dir, "sub", CountersFile)
	c := NewFileCounters(good)
	if _, err := c.Add("a", 1); err != nil {
		t.Fatal(err)
	}
	// The directory becomes a regular file: no temporary file can be made
	// there, even as root.
	if err := os.RemoveAll(filepath.Dir(good)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Dir(good), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("a", 1); !errors.Is(err, ErrState) {
		t.Fatalf("Add in a read-only directory: %v", err)
	}
	if v, _ := c.Add("a", 0); v != 1 {
		t.Fatalf("after a failed save the counter is %d, want 1", v)
	}
}

var _ middleware.CounterStore = (*FileCounters)(nil)
