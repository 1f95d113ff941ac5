package core

import (
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pipes counts this process's open pipe descriptors.
func pipes(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	n := 0
	for _, e := range entries {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "pipe:") {
			n++
		}
	}
	return n
}

// An idle relayed connection holds no splice pipe: Go's splice path keeps
// one (two descriptors) per direction while it waits for data, which would
// cost four descriptors per idle connection.
func TestIdleConnectionsHoldNoPipe(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	const conns = 40
	before := pipes(t)
	for i := 0; i < conns; i++ {
		c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("data"))
		readN(t, c, 4) // both directions have spliced
	}
	runtime.GC()
	runtime.GC()
	held := pipes(t) - before
	t.Logf("%d idle relayed connections: %d pipe descriptors open (pool included)", conns, held)
	if held >= conns {
		t.Fatalf("%d pipe descriptors for %d idle connections: idle relays hold pipes", held, conns)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.IdleTimeout = 300 * time.Millisecond
	_, addr := startProxy(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The target sends a byte every 100 ms for a while: one direction busy,
	// the other silent. Such a relay is not idle.
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, talk bool) {
				defer c.Close()
				for j := 0; talk && j < 8; j++ {
					if _, err := c.Write([]byte{'x'}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				_, _ = io.Copy(io.Discard, c)
			}(c, i == 0)
		}
	}()
	busy, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_ = busy.SetDeadline(time.Now().Add(10 * time.Second))
	if got := readN(t, busy, 8); string(got) != "xxxxxxxx" {
		t.Fatalf("busy relay got %q", got)
	}
	// Now both directions are silent: the relay ends after the timeout.
	start := time.Now()
	expectClosed(t, busy)
	t.Logf("idle relay closed %v after its last byte", time.Since(start).Round(10*time.Millisecond))

	silent, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_ = silent.SetDeadline(time.Now().Add(10 * time.Second))
	expectClosed(t, silent)
}

func TestLingerAfterHalfClose(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.Linger = 300 * time.Millisecond
	_, addr := startProxy(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c) // reads the half-close, never answers
		time.Sleep(10 * time.Second)
	}()
	c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expectClosed(t, c)
	t.Logf("half-closed relay with a silent peer closed after %v", time.Since(start).Round(10*time.Millisecond))
}
