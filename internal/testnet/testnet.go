// Package testnet holds loopback servers shared by the module's tests,
// which cannot import each other's test files.
package testnet

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Echo starts a TCP echo server on 127.0.0.1 and returns its address.
func Echo(t testing.TB) string {
	t.Helper()
	return EchoOn(t, "tcp", "127.0.0.1:0")
}

// EchoOn starts an echo server listening on network and addr. Each
// connection is echoed through a small buffer (not spliced: relay tests
// count pipes, and a splicing echo would hold one itself), and its
// writing side is half-closed when the client half-closes. The test's
// cleanup closes the listener and waits for every connection to end.
func EchoOn(t testing.TB, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096))
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			})
		}
	})
	return ln.Addr().String()
}

// Dial connects to addr over TCP within 5 seconds, gives every read and
// write on the conn 10 seconds in all, and closes it at the test's end.
func Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}
