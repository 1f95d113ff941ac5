package core

import (
	"context"
	"net"
	"net/netip"
	"syscall"

	"github.com/socks5d/socks5d/middleware"
)

// The server's own listeners are off limits to its clients: a proxy user
// must not reach the admin port (which listens on loopback precisely so
// that only the host can) or the metrics endpoint through the proxy, nor
// loop the proxy into itself. The check runs on every address a dial
// tries, after name resolution, so "localhost", 0.0.0.0 and the host's
// own addresses are caught as well as 127.0.0.1.
//
// Whether an address is the host's own is asked of the kernel at the
// moment of the dial (localAddr), not read from a list made at start-up:
// addresses the host gains later count, and so do link-local addresses
// given with a zone ("fe80::1%eth0"). Addresses are compared without
// their zone.

// protectSet is an immutable set of protected listener addresses.
type protectSet struct {
	listeners []netip.AddrPort // without zones, IPv4 unmapped
	// isLocal reports whether an address (with its zone, if any) is
	// delivered to this host; an error counts as yes (fail closed).
	isLocal func(netip.Addr) (bool, error)
}

// Protect makes dials to the given listeners' addresses fail with reply
// 0x02 (not allowed). Call it with the SOCKS, admin and metrics
// listeners once they are open.
func (r *Runtime) Protect(addrs ...net.Addr) {
	p := &protectSet{isLocal: r.isLocal}
	if p.isLocal == nil {
		p.isLocal = localAddr
	}
	for _, a := range addrs {
		if ap := addrPortOf(a); ap.IsValid() {
			p.listeners = append(p.listeners, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
		}
	}
	r.protected.Store(p)
}

// covers reports whether dialing dst reaches one of the listeners. The
// kernel is asked only when dst's port is a listener's on all addresses.
func (p *protectSet) covers(dst netip.AddrPort) bool {
	zoned := dst.Addr().Unmap()
	ip := zoned.WithZone("")
	loop := ip.IsLoopback() || ip.IsUnspecified()
	asked, local := false, false
	for _, l := range p.listeners {
		if l.Port() != dst.Port() {
			continue
		}
		switch {
		case l.Addr() == ip:
			return true
		case (l.Addr().IsLoopback() || l.Addr().IsUnspecified()) && loop:
			return true
		case l.Addr().IsUnspecified():
			if !asked {
				ok, err := p.isLocal(zoned)
				asked, local = true, ok || err != nil
			}
			if local {
				return true
			}
		}
	}
	return false
}

// control is the base dialer's Control hook: it refuses protected
// addresses before the connect.
func (r *Runtime) control(_, address string, _ syscall.RawConn) error {
	p := r.protected.Load()
	if p == nil {
		return nil
	}
	if ap, err := netip.ParseAddrPort(address); err == nil && p.covers(ap) {
		return &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: ErrOwnListener}
	}
	return nil
}

// controlContext is the base dialer's ControlContext: the protection
// check, then the SocketControls a stage put on the dial's ctx (an egress
// stage's local address or interface).
func (r *Runtime) controlContext(ctx context.Context, network, address string, c syscall.RawConn) error {
	if err := r.control(network, address, c); err != nil {
		return err
	}
	for _, f := range middleware.SocketControls(ctx) {
		if err := f(ctx, network, address, c); err != nil {
			return err
		}
	}
	return nil
}

// localInAddrs reports whether ip, compared without its zone, is one of
// the interface addresses addrs (as net.InterfaceAddrs returns them).
func localInAddrs(addrs []net.Addr, ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if have, ok := netip.AddrFromSlice(n.IP); ok && have.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// localByInterfaces asks for the interface addresses afresh: the
// portable answer to "is ip this host's", used where the kernel cannot be
// asked directly.
func localByInterfaces(ip netip.Addr) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	return localInAddrs(addrs, ip), nil
}
