package connlog_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/connlog"
	"github.com/socks5d/socks5d/middleware"
)

// waitLines waits until name holds n lines.
func waitLines(t *testing.T, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(name)
		if bytes.Count(b, []byte("\n")) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d lines: %q", name, n, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logrotate's default: the file is moved away, then the server is told
// (SIGHUP, which calls ReopenFiles). Records from then on go to a new file
// under the configured name; the moved file keeps what it had.
func TestReopenAfterMove(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	mw := newStage(t, p)
	name := filepath.Join(dir, connlog.DefaultFile)

	mw.(middleware.Reopener).ReopenFiles() // before the writer runs: nothing to do
	serveFacts(t, mw, 1, 3)
	waitLines(t, name, 3) // written and flushed: the writer holds the file open
	if err := os.Rename(name, name+"-20250713"); err != nil {
		t.Fatal(err)
	}
	mw.(middleware.Reopener).ReopenFiles()
	serveFacts(t, mw, 4, 5)
	// A rebuilt stage (a reload) shares the writer: reopening through it
	// works the same.
	mw2 := newStage(t, p)
	waitLines(t, name, 2)
	if err := os.Rename(name, name+"-20250714"); err != nil {
		t.Fatal(err)
	}
	mw2.(middleware.Reopener).ReopenFiles()
	serveFacts(t, mw2, 6, 6)
	closePool(t, p)

	for file, want := range map[string]string{
		name + "-20250713": "[1 2 3]",
		name + "-20250714": "[4 5]",
		name:               "[6]",
	} {
		if got := fmt.Sprint(lineIDs(t, file)); got != want {
			t.Errorf("%s holds %s, want %s", filepath.Base(file), got, want)
		}
	}
	if w, d, e := stat(t, mw, "log_written"), stat(t, mw, "log_dropped"), stat(t, mw, "log_errors"); w != 6 || d != 0 || e != 0 {
		t.Errorf("log_written %d, log_dropped %d, log_errors %d; want 6, 0, 0", w, d, e)
	}
}
