package socks5dmain

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dataDirConfig is lcAliceConfig with data_dir set to dir.
func dataDirConfig(t *testing.T, dir string) string {
	t.Helper()
	return writeConfig(t, lcAliceConfig+"data_dir: "+dir+"\n")
}

// A data directory others may write in is refused at start and by -t
// (status 2, naming it); one that cannot be a directory likewise; a
// missing one passes -t, which leaves it missing, and the server creates
// it, 0700, as it starts.
func TestDataDirChecks(t *testing.T) {
	t.Run("writable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		cfg := dataDirConfig(t, dir)
		for _, args := range [][]string{{"-t", "-c", cfg}, {"-c", cfg, "-l", "127.0.0.1", "-p", "0", "-P", "0"}} {
			code, out, errOut := lcRunBinary(t, "", args...)
			if code != 2 || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "writable by group or others") {
				t.Errorf("%v: exit %d, want 2 naming %s\nstdout: %s\nstderr: %s", args, code, dir, out, errOut)
			}
			if strings.Contains(out+errOut, "configuration OK") || strings.Contains(out+errOut, "listening") {
				t.Errorf("%v went on with a world-writable data_dir:\n%s%s", args, out, errOut)
			}
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := lcRunBinary(t, "", "-t", "-c", dataDirConfig(t, file))
		if code != 2 || !strings.Contains(errOut, file) {
			t.Errorf("-t: exit %d, want 2 naming %s\nstdout: %s\nstderr: %s", code, file, out, errOut)
		}
	})
	t.Run("not writable", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		if os.Geteuid() == 0 {
			t.Skip("root writes in a read-only directory")
		}
		code, out, errOut := lcRunBinary(t, "", "-t", "-c", dataDirConfig(t, dir))
		if code != 2 || !strings.Contains(errOut, dir) || !strings.Contains(errOut, "not writable") {
			t.Errorf("-t: exit %d, want 2 naming %s\nstdout: %s\nstderr: %s", code, dir, out, errOut)
		}
	})
	t.Run("missing", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "state", "data")
		cfg := dataDirConfig(t, dir)
		code, out, errOut := lcRunBinary(t, "", "-t", "-c", cfg)
		if code != 0 || !strings.Contains(out, "configuration OK") {
			t.Errorf("-t: exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 0 {
			t.Errorf("-t left %v behind", ents)
		}
		p := startLCProc(t, 0, "-c", cfg)
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("data_dir at start: %v (%v), want a directory closed to others", fi, err)
		}
		persistStop(t, p)
	})
}

// logrotate's default: move the connection log away, then SIGHUP. The
// server starts a new file under the configured name, whether the reload
// that comes with the signal is accepted or rejected; the moved file keeps
// what it had and gets nothing more.
func TestSIGHUPReopensConnectionLog(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := dataDirConfig(t, dataDir)
	p := startLCProc(t, 0, "-c", cfgPath)
	echo := lcEchoTarget(t)
	logPath := filepath.Join(dataDir, "connections.jsonl")
	waitLines := func(name string, n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			b, _ := os.ReadFile(name)
			if bytes.Count(b, []byte("\n")) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never held %d lines: %q", name, n, b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	roundTrip := func() {
		t.Helper()
		if err := lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr()); err != nil {
			t.Fatal(err)
		}
	}

	roundTrip()
	waitLines(logPath, 1)
	// A rotation with a reload that is rejected: the log moves on anyway.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(lcAliceConfig+"data_dir: "+dataDir+"\nsocks:\n  prot: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "reload rejected", 1, 5*time.Second)
	roundTrip()
	waitLines(logPath, 1)

	// A rotation with a reload that is accepted.
	if err := os.Rename(logPath+".1", logPath+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(lcAliceConfig+"data_dir: "+dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1, 5*time.Second)
	roundTrip()
	roundTrip()
	waitLines(logPath, 2)
	persistStop(t, p)

	for name, want := range map[string]int{logPath + ".2": 1, logPath + ".1": 1, logPath: 2} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n != want {
			t.Errorf("%s holds %d lines, want %d:\n%s", filepath.Base(name), n, want, b)
		}
	}
}
