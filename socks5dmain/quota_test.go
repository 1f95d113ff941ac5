package socks5dmain

// The quota stage end to end (issue 17): the real binary, a real SOCKS
// client, a download that crosses the quota mid-transfer, reply 0x02 for
// the next request, PCTP QUOTA and STATS USER, and the count surviving a
// restart over the same data directory.

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const quotaConfig = `log:
  level: INFO
chain:
  - use: auth
  - use: quota
    per_user: 1MiB
    period: day
    time_zone: Europe/Madrid
  - use: accounting
`

// lcSourceTarget sends size bytes to each connection, then closes it.
func lcSourceTarget(t *testing.T, size int) *lcTarget {
	return newLCTarget(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; {
			n, err := c.Write(buf[:min(len(buf), size-sent)])
			sent += n
			if err != nil {
				return
			}
		}
	})
}

func TestQuotaEndToEnd(t *testing.T) {
	const quota = 1 << 20
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(quotaConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", "proxy.yaml", "-u", "admin:password", "-u", "alice:wonderland"}
	p := persistStartIn(t, dir, args...)
	src := lcSourceTarget(t, 8<<20)

	c, err := dialer(t, p.socks, "alice", "wonderland").Dial("tcp", src.addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	got, err := io.Copy(io.Discard, c)
	c.Close()
	t.Logf("8 MiB download with a 1 MiB quota: received %d bytes (%v)", got, err)
	if got > quota || got < quota-64<<10 {
		t.Fatalf("received %d bytes, want the quota %d within one buffer", got, quota)
	}

	_, err = dialer(t, p.socks, "alice", "wonderland").Dial("tcp", src.addr())
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("next request: %v, want reply 0x02 (connection not allowed by ruleset)", err)
	}
	if _, err := dialer(t, p.socks, "admin", "password").Dial("tcp", src.addr()); err != nil {
		t.Fatalf("another user refused: %v", err)
	}

	admin := persistAdmin(t, p)
	r := do(t, admin, "QUOTA")
	if len(r.Lines) < 1 || !strings.HasPrefix(r.Lines[len(r.Lines)-1], "alice used=1048576 limit=1048576 period=day:") {
		t.Fatalf("QUOTA:\n%s", r)
	}
	us := do(t, admin, "STATS USER alice")
	if !containsLine(us.Lines, "quota_used_bytes: 1048576") || !containsLine(us.Lines, "quota_left_bytes: 0") {
		t.Fatalf("STATS USER alice:\n%s", us)
	}
	admin.Close()

	// A restart over the same data directory keeps the count.
	persistStop(t, p)
	if _, err := os.Stat(filepath.Join(dir, "data", "counters.json")); err != nil {
		t.Fatalf("no counters file after a stop: %v", err)
	}
	p = persistStartIn(t, dir, args...)
	_, err = dialer(t, p.socks, "alice", "wonderland").Dial("tcp", src.addr())
	if err == nil {
		t.Fatal("after a restart alice is under the quota again")
	}
	admin = persistAdmin(t, p)
	do(t, admin, "QUOTA RESET alice")
	c, err = dialer(t, p.socks, "alice", "wonderland").Dial("tcp", src.addr())
	if err != nil {
		t.Fatalf("after QUOTA RESET: %v", err)
	}
	c.Close()
	p.signal(t, syscall.SIGTERM)
	if code := p.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
