package core

import (
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

// protectSet is an immutable set of protected listener addresses.
type protectSet struct {
	listeners []netip.AddrPort
	local     map[netip.Addr]bool // the host's own addresses
}

// Protect makes dials to the given listeners' addresses fail with reply
// 0x02 (not allowed). Call it with the SOCKS, admin and metrics
// listeners once they are open.
func (r *Runtime) Protect(addrs ...net.Addr) {
	p := &protectSet{local: map[netip.Addr]bool{}}
	for _, a := range addrs {
		if ap := addrPortOf(a); ap.IsValid() {
			p.listeners = append(p.listeners, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	if ifaddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaddrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					p.local[ip.Unmap()] = true
				}
			}
		}
	}
	r.protected.Store(p)
}

// covers reports whether dialing dst reaches one of the listeners.
func (p *protectSet) covers(dst netip.AddrPort) bool {
	ip := dst.Addr().Unmap()
	self := ip.IsLoopback() || ip.IsUnspecified() || p.local[ip]
	for _, l := range p.listeners {
		if l.Port() != dst.Port() {
			continue
		}
		switch {
		case l.Addr() == ip:
			return true
		case l.Addr().IsUnspecified() && self:
			return true
		case l.Addr().IsLoopback() && (ip.IsLoopback() || ip.IsUnspecified()):
			return true
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
