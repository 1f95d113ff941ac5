package filter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// dialer is the policy dialer the stage installs on each Session. It reads
// the session's user, role, client and command when DialContext is called:
// the terminal handler sets them, in the same goroutine, before it dials.
type dialer struct {
	st   *stage
	next middleware.Dialer
	s    *middleware.Session
}

var _ middleware.Dialer = (*dialer)(nil)

// DialContext checks address (host:port, as the client asked: an address
// or a name) against the policy and dials it with the inner Dialer if it
// is allowed. A name is resolved here, every address is checked, and the
// addresses are dialed in order, as IP:port, until one connects; but when
// the inner Dialer hands the name to an upstream proxy unresolved
// (middleware.NameDialer), the name is decided alone and passed on. A refusal
// is a *middleware.ReplyError with code ReplyNotAllowed wrapping a
// *DeniedError; a failed lookup is a *net.DNSError.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	lookup, ok := lookupNetwork(network)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNetwork, network)
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrAddress, address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%w %q", ErrAddress, address)
	}
	dest := middleware.Target{Name: host, Port: uint16(port)}
	q := queryOf(d.s, d.s.Command, dest)

	if q.Name == "" { // an address
		ok, rule := d.st.policy.decide(&q)
		d.st.record(ok, rule)
		if !ok {
			return nil, d.deny(host, netip.Addr{}, rule)
		}
		return d.next.DialContext(ctx, network, address)
	}

	if denied, rule := d.st.policy.deniedName(&q); denied {
		d.st.record(false, rule) // refused whatever it resolves to: no lookup
		return nil, d.deny(host, netip.Addr{}, rule)
	}
	if nd, ok := d.next.(middleware.NameDialer); ok && nd.DialsName(network, address) {
		// An upstream resolves the name: it is decided by name alone (a
		// CIDR entry cannot match it) and handed on unresolved.
		ok, rule := d.st.policy.decide(&q)
		d.st.record(ok, rule)
		if !ok {
			return nil, d.deny(host, netip.Addr{}, rule)
		}
		return d.next.DialContext(ctx, network, address)
	}
	addrs, err := d.resolve(ctx, lookup, host)
	if err != nil {
		return nil, err
	}
	v := d.st.policy.allowed(q, addrs)
	d.st.record(v.allow, v.rule)
	if !v.allow {
		return nil, d.deny(host, v.addr, v.rule)
	}
	return d.dialSerial(ctx, network, addrs, portText)
}

// lookupNetwork maps a dial network to a lookup network.
func lookupNetwork(network string) (string, bool) {
	switch network {
	case "tcp", "udp":
		return "ip", true
	case "tcp4", "udp4":
		return "ip4", true
	case "tcp6", "udp6":
		return "ip6", true
	}
	return "", false
}

// resolve looks host up and keeps the addresses of the lookup network,
// IPv4-mapped IPv6 ones as IPv4.
// Every failure is a *net.DNSError, so the engine replies 0x04 (or 0x06 on
// a timeout).
func (d *dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, err := d.st.resolver.LookupNetIP(ctx, network, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return nil, fmt.Errorf("filter: resolve %q: %w", host, err)
		}
		return nil, &net.DNSError{
			Err:       err.Error(),
			Name:      host,
			IsTimeout: errors.Is(err, context.DeadlineExceeded),
			UnwrapErr: err,
		}
	}
	kept := addrs[:0:0]
	for _, a := range addrs {
		u := a.Unmap()
		if network == "ip4" && !u.Is4() || network == "ip6" && !u.Is6() {
			continue
		}
		kept = append(kept, u)
	}
	if len(kept) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return kept, nil
}

// deny logs a refusal and returns the error that makes the engine reply
// 0x02.
func (d *dialer) deny(host string, addr netip.Addr, rule int) error {
	if l := d.s.Logger; l != nil {
		args := []any{"target", host, "rule", ruleName(rule)}
		if addr.IsValid() {
			args = append(args, "address", addr.String())
		}
		l.Info("destination denied", args...)
	}
	return &middleware.ReplyError{
		Code: middleware.ReplyNotAllowed,
		Err:  &DeniedError{Target: host, Addr: addr, Rule: rule},
	}
}

// dialSerial dials the addresses in order until one connects. When ctx has
// a deadline each attempt gets a share of the time left, as net.Dialer
// does, so one silent address does not use it all. It returns the first
// error when none connects.
func (d *dialer) dialSerial(ctx context.Context, network string, addrs []netip.Addr, port string) (net.Conn, error) {
	var first error
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			if first == nil {
				first = err
			}
			break
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			actx, cancel = context.WithDeadline(ctx, partialDeadline(time.Now(), deadline, len(addrs)-i))
		}
		c, err := d.next.DialContext(actx, network, net.JoinHostPort(a.String(), port))
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// minAttempt is the least time an attempt gets when there is that much
// left.
const minAttempt = 2 * time.Second

// partialDeadline shares the time left before deadline among the
// addresses left to try.
func partialDeadline(now, deadline time.Time, left int) time.Time {
	remaining := deadline.Sub(now)
	timeout := remaining / time.Duration(left)
	if timeout < minAttempt {
		timeout = min(minAttempt, remaining)
	}
	return now.Add(timeout)
}
