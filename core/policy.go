package core

import (
	"context"
	"net"
	"net/netip"

	"github.com/socks5d/socks5d/middleware"
)

// Destination policies and BIND and UDP ASSOCIATE. CONNECT reaches its
// destination through the Dialer, which a policy stage wraps; BIND's peer
// and each UDP datagram's destination do not, so the engine asks the
// snapshot's policies itself, in the same order as the policy dialer: a
// name first, before any lookup, so that a name refused whatever it
// resolves to never reaches DNS; then the name with every address it
// resolved to.

// resolver looks names up; *net.Resolver satisfies it. Tests inject one
// that records what it was asked.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// policiesOf returns the stages that are destination policies.
func policiesOf(stages []Stage) []middleware.Policy {
	var ps []middleware.Policy
	for _, st := range stages {
		if p, ok := st.Middleware.(middleware.Policy); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// allowed asks every destination policy; all must allow. With dest a name
// and resolved nil it is the check before the lookup (see
// middleware.Policy).
func (t *terminal) allowed(s *middleware.Session, cmd middleware.Command, dest middleware.Target, resolved []netip.Addr) bool {
	for _, p := range t.policies {
		if ok, _ := p.Allowed(s, cmd, dest, resolved); !ok {
			return false
		}
	}
	return true
}

// nameAllowed is the check of a name before it is looked up: false when a
// policy refuses it whatever it resolves to. An address, or a name that is
// an IP literal (no DNS involved), passes: it is checked once, with what
// it resolves to.
func (t *terminal) nameAllowed(s *middleware.Session, cmd middleware.Command, dest middleware.Target) bool {
	if dest.Name == "" || len(t.policies) == 0 {
		return true
	}
	if _, err := netip.ParseAddr(dest.Name); err == nil {
		return true
	}
	return t.allowed(s, cmd, dest, nil)
}

// lookup resolves a name the engine needs itself (BIND's peer, a UDP
// datagram's destination) within the connect timeout; the addresses come
// unmapped and without zones, as the engine compares them. An IP literal
// is its own address. Ask nameAllowed first: a refused name must not be
// looked up.
func (t *terminal) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil { // a literal: no lookup
		return []netip.Addr{a.Unmap().WithZone("")}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.settings.ConnectTimeout)
	defer cancel()
	var res resolver = net.DefaultResolver
	if t.rt.resolver != nil {
		res = t.rt.resolver
	}
	addrs, err := res.LookupNetIP(ctx, "ip", name)
	for i := range addrs {
		addrs[i] = addrs[i].Unmap().WithZone("")
	}
	return addrs, err
}
