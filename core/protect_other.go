//go:build !linux

package core

import "net/netip"

// localAddr reports whether ip is one of the host's addresses, reading
// the interface addresses at each call.
func localAddr(ip netip.Addr) (bool, error) { return localByInterfaces(ip) }
