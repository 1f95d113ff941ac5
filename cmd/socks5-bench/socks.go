package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// errSocks marks a SOCKS5 protocol failure seen by the bench's client.
var errSocks = errors.New("socks5")

// endpoint is one way of reaching the loopback targets: directly, or
// through a SOCKS5 server under test.
type endpoint struct {
	label string // "direct", "a" or "b"
	name  string // shown in the table
	proxy string // host:port of the SOCKS5 server; "" means direct
	http  bool   // the proxy speaks HTTP CONNECT, not SOCKS5
	user  string
	pass  string
	srv   *server // nil for direct
}

// dial connects to target, through the proxy if there is one, and returns
// the connection ready to carry data. The deadline bounds the whole setup
// and stays set on the returned connection; callers reset it as they need.
func (e *endpoint) dial(ctx context.Context, target netip.AddrPort, deadline time.Time) (*net.TCPConn, error) {
	d := net.Dialer{Deadline: deadline}
	addr := target.String()
	if e.proxy != "" {
		addr = e.proxy
	}
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetDeadline(deadline); err != nil {
		tc.Close()
		return nil, err
	}
	if e.proxy == "" {
		return tc, nil
	}
	connect := func() error { return socksConnect(tc, e.user, e.pass, target) }
	if e.http {
		connect = func() error { return httpConnect(tc, e.user, e.pass, target) }
	}
	if err := connect(); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// socksConnect runs the client side of RFC 1928 (greeting, CONNECT) and,
// when user is not empty, RFC 1929 username/password authentication, one
// step at a time as a strict client does. It reads each reply with as few
// syscalls as the protocol allows.
func socksConnect(rw io.ReadWriter, user, pass string, target netip.AddrPort) error {
	if !target.Addr().Is4() {
		return fmt.Errorf("%w: target %v is not IPv4", errSocks, target)
	}
	if len(user) > 255 || len(pass) > 255 {
		return fmt.Errorf("%w: user or password longer than 255 bytes", errSocks)
	}
	var buf [3 + 255 + 255]byte

	method := byte(0x00)
	if user != "" {
		method = 0x02
	}
	if _, err := rw.Write([]byte{5, 1, method}); err != nil {
		return fmt.Errorf("%w: greeting: %w", errSocks, err)
	}
	if _, err := io.ReadFull(rw, buf[:2]); err != nil {
		return fmt.Errorf("%w: greeting reply: %w", errSocks, err)
	}
	if buf[0] != 5 || buf[1] != method {
		return fmt.Errorf("%w: server chose version %d method %#x, want 5 and %#x", errSocks, buf[0], buf[1], method)
	}

	if method == 0x02 {
		b := append(buf[:0], 1, byte(len(user)))
		b = append(b, user...)
		b = append(b, byte(len(pass)))
		b = append(b, pass...)
		if _, err := rw.Write(b); err != nil {
			return fmt.Errorf("%w: auth: %w", errSocks, err)
		}
		if _, err := io.ReadFull(rw, buf[:2]); err != nil {
			return fmt.Errorf("%w: auth reply: %w", errSocks, err)
		}
		if buf[0] != 1 || buf[1] != 0 {
			return fmt.Errorf("%w: authentication refused (version %d status %d)", errSocks, buf[0], buf[1])
		}
	}

	ip := target.Addr().As4()
	port := target.Port()
	req := [10]byte{5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(port >> 8), byte(port)}
	if _, err := rw.Write(req[:]); err != nil {
		return fmt.Errorf("%w: connect: %w", errSocks, err)
	}
	// The reply is at least 5 bytes; nothing else can arrive before we
	// send data, so reading up to the buffer size takes one syscall.
	n, err := io.ReadAtLeast(rw, buf[:], 5)
	if err != nil {
		return fmt.Errorf("%w: connect reply: %w", errSocks, err)
	}
	if buf[0] != 5 {
		return fmt.Errorf("%w: connect reply version %d", errSocks, buf[0])
	}
	if buf[1] != 0 {
		return fmt.Errorf("%w: CONNECT failed with reply code %d", errSocks, buf[1])
	}
	var need int
	switch buf[3] {
	case 1:
		need = 4 + 4 + 2
	case 4:
		need = 4 + 16 + 2
	case 3:
		need = 4 + 1 + int(buf[4]) + 2
	default:
		return fmt.Errorf("%w: connect reply address type %d", errSocks, buf[3])
	}
	if n > need {
		return fmt.Errorf("%w: %d unexpected bytes after the connect reply", errSocks, n-need)
	}
	if n < need {
		if _, err := io.ReadFull(rw, buf[n:need]); err != nil {
			return fmt.Errorf("%w: connect reply: %w", errSocks, err)
		}
	}
	return nil
}
