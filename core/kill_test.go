package core

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// floodTarget accepts one connection and writes to it until the write
// fails, counting the bytes written; done is closed with the write's
// error set.
type floodTarget struct {
	addr    netip.AddrPort
	written atomic.Int64
	done    chan struct{}
	err     error
}

func startFloodTarget(t *testing.T) *floodTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &floodTarget{addr: addrPortOf(ln.Addr()), done: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(f.done)
		c, err := ln.Accept()
		if err != nil {
			f.err = err
			return
		}
		defer c.Close()
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Write(buf)
			f.written.Add(int64(n))
			if err != nil {
				f.err = err
				return
			}
		}
	}()
	return f
}

// clientRcvBuf is the kill test's client receive buffer.
const clientRcvBuf = 32 << 10

// connectRaw opens a CONNECT to dest as bob and returns the client conn
// and the session's id.
func connectRaw(t *testing.T, rt *Runtime, proxyAddr string, dest netip.AddrPort) (net.Conn, uint64) {
	t.Helper()
	// A fixed receive buffer (no autotuning) bounds what the client's
	// kernel can hold: the rest is queued in the server.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, clientRcvBuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	handshake(t, c, "bob", "builder")
	if _, err := c.Write(appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: dest.Addr(), Port: dest.Port()})); err != nil {
		t.Fatal(err)
	}
	if code, _ := readReply(t, c); code != middleware.ReplySucceeded {
		t.Fatalf("CONNECT reply %v", code)
	}
	var id uint64
	waitFor(t, "the session to be listed", func() bool {
		for _, si := range rt.Admin().Sessions() {
			if si.User == "bob" && si.Target.Port == dest.Port() {
				id = si.ID
				return true
			}
		}
		return false
	})
	return c, id
}

// waitStalled waits until the session's bytes down stop growing: the
// client does not read, and every buffer on the way is full.
func waitStalled(t *testing.T, rt *Runtime, id uint64) int64 {
	t.Helper()
	var last int64 = -1
	same := 0
	for range 1000 {
		var down int64
		for _, si := range rt.Admin().Sessions() {
			if si.ID == id {
				down = si.Down
			}
		}
		if down > 0 && down == last {
			if same++; same == 10 {
				return down
			}
		} else {
			same = 0
		}
		last = down
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the transfer never stalled")
	return 0
}

// drain reads c to its end and returns the bytes read and the error that
// ended it.
func drain(c net.Conn) (int64, error) {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return n, err
}

// KILL aborts a connection: the client's data still queued in the server
// is thrown away and the client sees a reset, not an orderly end after
// the queue; the destination is reset too, and the session ends.
func TestKillAborts(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(rt *Runtime, id uint64) error
	}{
		{"KILL id", func(rt *Runtime, id uint64) error { return rt.Admin().Kill(id) }},
		{"KILL USER", func(rt *Runtime, _ uint64) error {
			if n := rt.Admin().KillUser("bob"); n != 1 {
				return errors.New("KillUser did not close one session")
			}
			return nil
		}},
		{"DEL", func(rt *Runtime, _ uint64) error { return rt.Admin().DeleteUser("bob") }},
		{"KILL id, wrapped conn", func(rt *Runtime, id uint64) error { return rt.Admin().Kill(id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := defaultTestChain()
			if tc.name == "KILL id, wrapped conn" {
				chain = append(chain, stage("test.wrap")) // the buffered relay
			}
			rt, addr := startProxy(t, testConfig(chain...))
			target := startFloodTarget(t)
			c, id := connectRaw(t, rt, addr, target.addr)
			queued := waitStalled(t, rt, id)
			if err := tc.kill(rt, id); err != nil {
				t.Fatal(err)
			}
			// The session ends once both conns are closed and the relay
			// has returned; only then does the client read.
			waitFor(t, "the session to end", func() bool { return rt.sessions.Len() == 0 })
			n, err := drain(c)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the client read %d bytes (of %d the server had sent) and then %v; want a reset", n, queued, err)
			}
			// What the client's kernel had already received (at most its
			// receive buffer, which the kernel doubles for its overhead)
			// may be read before the reset; the server's queue is not
			// delivered.
			if n > 2*clientRcvBuf || n >= queued {
				t.Errorf("the client read %d bytes after the kill (receive buffer %d), the server had sent %d: the queue was delivered", n, clientRcvBuf, queued)
			}
			t.Logf("queued %d, read after the kill %d, then %v", queued, n, err)
			<-target.done
			if !errors.Is(target.err, syscall.ECONNRESET) && !errors.Is(target.err, syscall.EPIPE) {
				t.Errorf("the destination's write ended with %v, want a reset", target.err)
			}
		})
	}
}
