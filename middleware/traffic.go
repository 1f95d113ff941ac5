package middleware

// Traffic: what the engine asks stages about bytes and destinations that
// do not pass through Session.Conn and Session.Dialer.

import (
	"net"
	"net/netip"
)

// ReadThrough is implemented by a conn wrapper (installed on Session.Conn)
// whose Read reads straight from the conn it wraps and buffers nothing.
// The relay then waits on the inner socket for data, so an idle connection
// holds no relay buffer. A wrapper that buffers (TLS, a bufio.Reader) must
// not implement it: the socket could be idle while the wrapper holds data.
type ReadThrough interface {
	Inner() net.Conn
}

// Pacer is what a rate-limiting stage installs on the Session for traffic
// that does not flow through Session.Conn: the engine asks it before
// relaying each UDP datagram. A datagram it refuses is dropped, never
// queued: that is UDP's answer to congestion.
type Pacer interface {
	// AllowBytes reports whether n more bytes may go now, up (client to
	// destination) or down (destination to client), and takes them.
	AllowBytes(up bool, n int) bool
}

// Policy is implemented by a stage that decides which destinations a
// session may reach (a destination policy). The engine asks it for what
// does not go through the Dialer: each UDP datagram's destination and the
// peer of a BIND.
type Policy interface {
	// Allowed reports whether the session may reach dest with cmd. When
	// dest is a name, resolved holds the addresses it resolved to, each of
	// which must be allowed too. rule is the index of the deciding rule,
	// -1 for the default.
	Allowed(s *Session, cmd Command, dest Target, resolved []netip.Addr) (allowed bool, rule int)
}
