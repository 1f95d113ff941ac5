package main

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// serveGoroutines serves ln with a goroutine per connection until ln is
// closed. A failed accept (out of descriptors, say) is retried after a
// pause that doubles up to a second, as net/http's server does.
func serveGoroutines(ln net.Listener, c credentials) {
	var pause time.Duration
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		go serveConn(conn.(*net.TCPConn), c)
	}
}

// serveConn runs the handshake with blocking reads, then io.Copy both
// ways (splice between the two TCP conns).
func serveConn(client *net.TCPConn, c credentials) {
	defer client.Close()
	var buf [handshakeMax]byte
	// next reads until parse takes a whole message from buf[:have], and
	// drops it from the buffer.
	have := 0
	next := func(parse func([]byte) (int, error)) error {
		for {
			n, err := parse(buf[:have])
			if err != errMore {
				have = copy(buf[:], buf[n:have])
				return err
			}
			if have == len(buf) {
				return errMore
			}
			m, rerr := client.Read(buf[have:])
			if rerr != nil {
				return rerr
			}
			have += m
		}
	}
	if err := next(greeting); err != nil {
		if err == errNoMethod {
			_, _ = client.Write([]byte{socksVersion, noMethod})
		}
		return
	}
	if _, err := client.Write([]byte{socksVersion, methodPass}); err != nil {
		return
	}
	if err := next(func(b []byte) (int, error) { return login(b, c) }); err != nil {
		if err == errAuth {
			_, _ = client.Write([]byte{authVersion, 1})
		}
		return
	}
	if _, err := client.Write([]byte{authVersion, 0}); err != nil {
		return
	}
	var dest netip.AddrPort
	err := next(func(b []byte) (n int, err error) {
		n, dest, err = request(b)
		return n, err
	})
	switch err {
	case nil:
	case errCmd:
		_, _ = client.Write(reply(middleware.ReplyCommandUnsupported, zeroAP))
		return
	case errAtyp:
		_, _ = client.Write(reply(middleware.ReplyAddressUnsupported, zeroAP))
		return
	default:
		return
	}
	t, err := net.Dial("tcp", dest.String())
	if err != nil {
		_, _ = client.Write(reply(middleware.ReplyFor(err), zeroAP))
		return
	}
	target := t.(*net.TCPConn)
	defer target.Close()
	if _, err := client.Write(reply(middleware.ReplySucceeded, target.LocalAddr().(*net.TCPAddr).AddrPort())); err != nil {
		return
	}
	if have > 0 { // early data after the request
		if _, err := target.Write(buf[:have]); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		pass(client, target)
		close(done)
	}()
	pass(target, client)
	<-done
}

// pass copies src to dst and passes src's EOF on as a half-close; an
// error ends both conns.
func pass(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	_ = dst.CloseWrite()
}
