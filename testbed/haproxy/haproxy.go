// Package haproxy starts Debian's haproxy for tests: in TCP mode, on
// loopback ports only, in front of servers the test names, each with the
// PROXY protocol version it should be sent. Tests that need haproxy call
// Start; without the binary they skip saying what is missing, or fail
// under CI=true.
package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one backend server behind its own frontend.
type Server struct {
	// Addr is the server's host:port (loopback).
	Addr string
	// Send is the PROXY protocol haproxy speaks to it: "send-proxy" (v1),
	// "send-proxy-v2", or "" for none.
	Send string
	// Check turns on haproxy's health checks of the server, every 100ms,
	// sending a PROXY header (LOCAL) when Send is set (check-send-proxy).
	Check bool
}

// HAProxy is a running haproxy.
type HAProxy struct {
	// Frontends are the loopback addresses clients connect to, one per
	// Server, in order.
	Frontends []string
	// Config is the configuration it runs with.
	Config string

	cmd *exec.Cmd
	out *syncBuffer
}

// Binary returns the path of haproxy, or skips the test (fails it under
// CI=true) when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		msg := "haproxy is not installed (Debian: apt-get install haproxy); .ci/run installs it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Start runs haproxy with one TCP frontend per server on a free loopback
// port, until the test ends, and waits until every frontend accepts.
func Start(t testing.TB, servers ...Server) *HAProxy {
	t.Helper()
	bin := Binary(t)
	h := &HAProxy{out: &syncBuffer{}}
	var cfg strings.Builder
	cfg.WriteString("global\n    maxconn 4000\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n")
	for i, s := range servers {
		front := freePort(t)
		h.Frontends = append(h.Frontends, front)
		opts := s.Send
		if s.Check {
			opts += " check inter 100ms"
			if s.Send != "" {
				opts += " check-send-proxy"
			}
		}
		fmt.Fprintf(&cfg, "listen l%d\n    bind %s\n    server s%d %s %s\n", i, front, i, s.Addr, opts)
	}
	h.Config = cfg.String()
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(h.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, h.Config)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cmd = exec.CommandContext(ctx, bin, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("haproxy did not stop")
		}
	})
	for _, front := range h.Frontends {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", front, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				t.Fatalf("haproxy exited:\n%s\n%s", h.out, h.Config)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy does not accept on %s: %v\n%s", front, err, h.out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return h
}

// Output is what haproxy wrote so far.
func (h *HAProxy) Output() string { return h.out.String() }

// freePort returns a loopback address with a port free at the time.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
