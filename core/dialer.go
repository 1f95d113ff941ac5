package core

import (
	"context"
	"net"
	"net/netip"
)

// baseDialer is the dialer every session starts with: net.Dialer, with a
// fast path for an IP literal that skips the resolver machinery (the
// terminal handler dials "ip:port" for every request that names an
// address). Names go through net.Dialer, which tries every address they
// resolve to (Happy Eyeballs).
type baseDialer struct {
	net.Dialer
}

// DialContext dials address on network.
func (d *baseDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network == "tcp" {
		if ap, err := netip.ParseAddrPort(address); err == nil {
			c, err := d.DialTCP(ctx, network, netip.AddrPort{}, ap)
			if err != nil {
				return nil, err // not a typed-nil *TCPConn in a net.Conn
			}
			return c, nil
		}
	}
	return d.Dialer.DialContext(ctx, network, address)
}
