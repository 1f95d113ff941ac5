package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// BIND (RFC 1928 section 4): the client names the peer it expects (DST),
// the server listens on its outward address and replies with it, then
// replies again when that peer connects, and relays like CONNECT. Peers
// from other addresses are refused (reset) and the wait goes on until
// socks.bind.timeout. DST.PORT is not checked: a peer's source port is
// rarely known in advance (FTP's active mode, for one).

// defaultBindTimeout is socks.bind.timeout's default.
const defaultBindTimeout = 60 * time.Second

// BindSettings are BIND's settings (socks.bind).
type BindSettings struct {
	// Address is the IP to listen on; invalid: the server's address toward
	// the expected peer.
	Address netip.Addr
	// Timeout bounds the wait for the peer after the first reply.
	Timeout time.Duration
}

// validate checks socks.bind.
func (c BindConfig) validate() error {
	if c.Address != "" {
		a, err := netip.ParseAddr(c.Address)
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%w: socks.bind.address: want a unicast IP address (or empty), got %q", ErrConfig, c.Address)
		}
	}
	return nil
}

// bindSettingsOf converts a validated socks.bind; a zero timeout (a
// Config built by hand) takes the default.
func bindSettingsOf(c BindConfig) BindSettings {
	b := BindSettings{Timeout: c.Timeout}
	b.Address, _ = netip.ParseAddr(c.Address)
	b.Address = b.Address.Unmap()
	if b.Timeout <= 0 {
		b.Timeout = defaultBindTimeout
	}
	return b
}

// bind serves a BIND request up to the second reply and returns the
// peer's connection for the relay. Bytes the client sends while it waits
// are kept in h, like early data after CONNECT.
func (t *terminal) bind(ctx context.Context, s *middleware.Session, h *hsReader) (net.Conn, error) {
	fail := func(code middleware.Reply, err error) (net.Conn, error) {
		t.reply(s, code, netip.AddrPort{})
		return nil, &middleware.ReplyError{Code: code, Err: err}
	}
	dest := s.Target
	var expected, resolved []netip.Addr
	if dest.Name != "" {
		// A name the policy refuses is never looked up.
		if !t.nameAllowed(s, middleware.CmdBind, dest) {
			return fail(middleware.ReplyNotAllowed, ErrPolicyRefused)
		}
		addrs, err := t.lookup(ctx, dest.Name)
		if err != nil {
			return fail(middleware.ReplyFor(err), err)
		}
		expected, resolved = addrs, addrs
	} else {
		a := dest.Addr.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() {
			return fail(middleware.ReplyNotAllowed, ErrBindNoPeer)
		}
		expected = []netip.Addr{a}
	}
	if !t.allowed(s, middleware.CmdBind, dest, resolved) {
		return fail(middleware.ReplyNotAllowed, ErrPolicyRefused)
	}

	if len(expected) == 0 {
		return fail(middleware.ReplyHostUnreachable, ErrBindNoPeer)
	}
	ip := t.settings.Bind.Address
	if !ip.IsValid() {
		ip = outwardIP(expected[0], s.Conn)
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return fail(middleware.ReplyFor(err), err)
	}
	defer ln.Close()
	bound := addrPortOf(ln.Addr())
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	s.Bound = bound
	if err := t.reply(s, middleware.ReplySucceeded, bound); err != nil {
		return nil, err
	}
	peer, err := t.awaitPeer(ctx, s, h, ln, expected)
	if errors.Is(err, ErrBindTimeout) {
		return fail(middleware.ReplyTTLExpired, err)
	}
	if err != nil {
		return nil, err
	}
	if err := t.reply(s, middleware.ReplySucceeded, addrPortOf(peer.RemoteAddr())); err != nil {
		peer.Close()
		return nil, err
	}
	return peer, nil
}

// outwardIP is the local IP the server would use to reach dst, found by a
// route lookup that sends nothing (a UDP socket's connect), or the control
// connection's local IP when that fails.
func outwardIP(dst netip.Addr, ctrl net.Conn) netip.Addr {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err == nil {
		ip := addrPortOf(c.LocalAddr()).Addr().Unmap()
		c.Close()
		if ip.IsValid() && !ip.IsUnspecified() {
			return ip
		}
	}
	return addrPortOf(ctrl.LocalAddr()).Addr().Unmap()
}

// awaitPeer accepts on ln until a peer from an expected address connects,
// the bind timeout passes (ErrBindTimeout) or the control connection ends.
func (t *terminal) awaitPeer(ctx context.Context, s *middleware.Session, h *hsReader, ln *net.TCPListener, expected []netip.Addr) (*net.TCPConn, error) {
	client := s.Conn
	if err := client.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if err := ln.SetDeadline(time.Now().Add(t.settings.Bind.Timeout)); err != nil {
		return nil, err
	}
	// The session's end (a kill, a shutdown) cancels the wait too.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	watched := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				t.rt.panics.Add(1)
				ln.Close()
				watched <- fmt.Errorf("core: panic while watching the BIND control connection: %v", p)
			}
		}()
		watched <- watchBind(client, h, ln)
	}()
	var peer *net.TCPConn
	var err error
	for {
		var c *net.TCPConn
		if c, err = ln.AcceptTCP(); err != nil {
			break
		}
		from := addrPortOf(c.RemoteAddr())
		if slices.Contains(expected, from.Addr().Unmap().WithZone("")) {
			peer = c
			break
		}
		_ = c.SetLinger(0) // refused: a reset, not an orderly close
		c.Close()
		t.rt.bindRefused.Add(1)
		s.Logger.Info("BIND: refused a peer from an unexpected address", "peer", from.String(), "expected", s.Target.Host())
	}
	// Stop watching the control connection; it goes on in the relay.
	_ = client.SetReadDeadline(time.Unix(1, 0))
	werr := <-watched
	_ = client.SetReadDeadline(time.Time{})
	if werr != nil {
		if peer != nil {
			peer.Close()
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("core: control connection ended during BIND: %w", werr)
	}
	if peer == nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, ErrBindTimeout
		}
		return nil, err
	}
	return peer, nil
}

// watchBind reads the control connection into h while BIND waits: an end
// of it (EOF, error) closes ln, which cancels the wait. It returns nil
// when stopped by a read deadline, or when h is full (then it stops
// watching; the session's context still cancels the wait).
func watchBind(c net.Conn, h *hsReader, ln *net.TCPListener) error {
	for {
		if h.w == len(h.buf) {
			if h.r == 0 {
				return nil
			}
			h.w = copy(h.buf[:], h.buf[h.r:h.w])
			h.r = 0
		}
		n, err := c.Read(h.buf[h.w:])
		h.w += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			ln.Close()
			return err
		}
	}
}
