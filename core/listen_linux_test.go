package core

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// sockopt reads an integer socket option of a conn or listener.
func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// TestListenerKeepAliveInherited checks that the connections accepted by
// the SOCKS listener have the keep-alive socket.keepalive asks for, now
// that it is set once on the listening socket and inherited rather than
// set on each accepted socket: on with the system's timing, on with own
// idle and interval, or off.
func TestListenerKeepAliveInherited(t *testing.T) {
	sysIdle := func() int { // the system's timing, as a fresh socket has it
		s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(s)
		v, err := syscall.GetsockoptInt(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}()
	for _, tt := range []struct {
		setting  time.Duration
		on       bool
		idle     int // seconds
		interval int // seconds; 0: do not check
	}{
		{0, true, sysIdle, 0},
		{37 * time.Second, true, 37, 37},
		{-time.Second, false, 0, 0},
	} {
		lc := SOCKSConfig{KeepAlive: tt.setting}.ListenConfig()
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{5, 1, 0}); err != nil { // a greeting: accepted at once
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		tc := a.(*net.TCPConn)
		on := sockopt(t, tc, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) != 0
		idle := sockopt(t, tc, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		interval := sockopt(t, tc, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		if on != tt.on || (tt.on && idle != tt.idle) || (tt.interval != 0 && interval != tt.interval) {
			t.Errorf("keepalive %v: accepted conn has SO_KEEPALIVE %v, idle %ds, interval %ds; want %v, %ds, %ds",
				tt.setting, on, idle, interval, tt.on, tt.idle, tt.interval)
		}
		a.Close()
		c.Close()
		ln.Close()
	}
}

// TestListenerDefersAccept checks TCP_DEFER_ACCEPT on the SOCKS listener,
// and that a client that connects and says nothing is still accepted
// (after the kernel's deferral), so the handshake timeout governs it as
// before.
func TestListenerDefersAccept(t *testing.T) {
	ln, err := SOCKSConfig{}.ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if v := sockopt(t, ln.(*net.TCPListener), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT); v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT on the listener = %d", v)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatalf("a silent client was not accepted after the deferral: %v", err)
	}
	a.Close()
}
