//go:build unix

package forward

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
)

// socketControl returns the middleware.SocketControl that binds an
// outgoing socket to eg's local address and interface, or nil when eg
// names neither. The engine's dialer runs it after its own checks, on
// every socket the dial opens.
func socketControl(eg *egress) func(context.Context, string, string, syscall.RawConn) error {
	if !eg.bind.IsValid() && eg.iface == "" {
		return nil
	}
	return func(_ context.Context, network, address string, c syscall.RawConn) error {
		var opErr error
		err := c.Control(func(fd uintptr) {
			if eg.iface != "" {
				if err := bindToDevice(fd, eg.iface); err != nil {
					opErr = fmt.Errorf("%w: interface %s: %w", ErrSocket, eg.iface, err)
					return
				}
			}
			if eg.bind.IsValid() {
				opErr = bindAddr(fd, eg.bind, address)
			}
		})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSocket, err)
		}
		return opErr
	}
}

// bindAddr binds the socket to local (port 0) before it connects to
// address; the families must agree.
func bindAddr(fd uintptr, local netip.Addr, address string) error {
	dst, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: bind %s: %q is not an address", ErrSocket, local, address)
	}
	var sa syscall.Sockaddr
	switch {
	case local.Is4() && dst.Addr().Unmap().Is4():
		sa = &syscall.SockaddrInet4{Addr: local.As4()}
	case local.Is6() && !dst.Addr().Is4():
		sa = &syscall.SockaddrInet6{Addr: local.As16()}
	default:
		return fmt.Errorf("%w: bind %s cannot reach %s (another address family)", ErrSocket, local, dst.Addr())
	}
	bindNoPort(fd)
	if err := syscall.Bind(int(fd), sa); err != nil {
		return fmt.Errorf("%w: bind %s: %w", ErrSocket, local, err)
	}
	return nil
}
