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
	// Allowed reports whether the session may reach dest with cmd. rule is
	// the index of the deciding rule, -1 for the default.
	//
	// A name is asked about twice, as a policy dialer does for CONNECT:
	// first with resolved nil, before any lookup, when the policy refuses
	// only a name it refuses whatever the name resolves to (a refused name
	// never reaches DNS); then, if that allowed it, with resolved holding
	// every address the name resolved to, each of which must be allowed.
	Allowed(s *Session, cmd Command, dest Target, resolved []netip.Addr) (allowed bool, rule int)
}

// ProgressWriter is implemented by a conn wrapper (installed on
// Session.Conn) whose Write moves bytes out in pieces over a long time, as
// a rate limiter pacing them does. The relay writes through WriteProgress,
// so the session's byte counters and its last activity (SESSIONS' idle and
// rate, STATS) follow the bytes as they move rather than jumping when a
// long Write returns.
type ProgressWriter interface {
	// WriteProgress is Write that calls moved(n) after each piece of n > 0
	// bytes it has written; the pieces add up to the count it returns.
	// moved is cheap (atomic updates) and must not be retained.
	WriteProgress(p []byte, moved func(n int)) (int, error)
}
