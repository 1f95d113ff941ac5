package core

import (
	"context"
	"net"
	"net/netip"
)

// directDialer is the base dialer every session starts with: net.Dialer,
// with a shorter way for the common case. A request for an IP address
// (the address the stages hand down is then "ip:port") is dialled with
// DialTCP from the parsed address, skipping the resolver's address-list
// plumbing, about 15 allocations per connection; a host name goes through
// DialContext and its resolver as before. Both apply the same Dialer:
// ControlContext (the own-listener guard), keep-alive and the context's
// deadline.
type directDialer struct{ d *net.Dialer }

func (dd directDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		if ap, err := netip.ParseAddrPort(address); err == nil {
			c, err := dd.d.DialTCP(ctx, network, netip.AddrPort{}, ap)
			if err != nil {
				return nil, err // not a nil *TCPConn in an interface
			}
			return c, nil
		}
	}
	return dd.d.DialContext(ctx, network, address)
}
