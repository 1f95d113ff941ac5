package connlog_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/builtin/connlog"
)

// A link planted in the data directory in place of the log is never
// written through: the target stays as it was, the records are counted as
// lost, and the log says why, naming the file.
func TestPlantedLinkNotWrittenThrough(t *testing.T) {
	for _, name := range []string{connlog.DefaultFile, "dangling"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "victim")
			const before = "root:x:0:0:root:/root:/bin/sh\n"
			if name != "dangling" {
				if err := os.WriteFile(target, []byte(before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logPath := filepath.Join(dir, connlog.DefaultFile)
			if err := os.Symlink(target, logPath); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer // read once the writer has stopped
			p := fileParams(dir, nil)
			p.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
			mw := newStage(t, p)
			serveFacts(t, mw, 1, 3)
			closePool(t, p)

			got, err := os.ReadFile(target)
			switch {
			case name == "dangling" && !os.IsNotExist(err):
				t.Errorf("the dangling link's target was created: %q (%v)", got, err)
			case name != "dangling" && string(got) != before:
				t.Errorf("the link's target was written through: %q", got)
			}
			if fi, err := os.Lstat(logPath); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link was replaced or removed (%v)", err)
			}
			if n := stat(t, mw, "log_errors"); n != 3 {
				t.Errorf("log_errors = %d, want 3", n)
			}
			if n := stat(t, mw, "log_written"); n != 0 {
				t.Errorf("log_written = %d, want 0", n)
			}
			if l := logs.String(); !strings.Contains(l, "symbolic link") || !strings.Contains(l, logPath) {
				t.Errorf("the log does not say a link was refused, naming the file:\n%s", l)
			}
		})
	}
}

// Reading the log back at start-up does not follow a planted link either:
// lines behind it never reach LOGS.
func TestRefillSkipsLinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside.jsonl")
	line := `{"time":"2025-07-13T11:55:03.123Z","user":"planted","client_ip":"127.0.0.1","client_port":1,"host":"x","port":1,"reply":0,"bytes":0,"auth":"Auth","id":99,"command":"CONNECT","up":0,"down":0,"duration":0,"reason":"ok"}` + "\n"
	if err := os.WriteFile(outside, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, connlog.DefaultFile)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer // the refill logs from this goroutine
	p := fileParams(dir, nil)
	p.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs})
	mw := newStage(t, p)
	if n := logRecords(t, mw); n != 0 {
		t.Errorf("the ring holds %d records read through a link, want 0", n)
	}
	if l := logs.String(); !strings.Contains(l, "symbolic link") {
		t.Errorf("the log does not say a link was refused:\n%s", l)
	}
}
