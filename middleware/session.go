package middleware

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Session is one SOCKS connection as it flows through the chain.
//
// The engine creates it when a connection is accepted and fills the fields
// marked "set by the listener". Stages set the fields marked "configure"
// before calling next. The terminal handler fills the fields marked "fact" as
// the connection proceeds; they are final when next returns, and stages read
// them then. Fields are not synchronised unless their type says so: the
// byte counters are atomics because the relay updates them while other
// goroutines (statistics) read them.
type Session struct {
	// ID identifies the connection in logs and records (set by the listener).
	ID uint64
	// Start is when the connection was accepted (set by the listener).
	Start time.Time
	// Client is the client's address. It is the one place a stage reads it;
	// a listener wrapper (e.g. PROXY protocol) may replace it (set by the listener).
	Client netip.AddrPort
	// Via is the address the connection came from when Client was taken
	// from a PROXY protocol header: the load balancer's. Zero when the
	// connection came straight from the client (set by the listener).
	Via netip.AddrPort
	// Logger is named for the connection, with its id and client (set by the listener).
	Logger hclog.Logger
	// Listener names the listener that accepted the connection: "socks"
	// for the `socks:` listener, else its `listeners:` name (set by the listener).
	Listener string
	// Protocol is the protocol the client speaks, told by the listener
	// from the first byte: SOCKS5 or HTTP (set by the listener). Stages
	// need not care: the terminal handler speaks it, with the same facts.
	Protocol Protocol

	// Conn is the client side. A stage may replace it with a wrapper
	// (configure); the relay then copies through a buffer instead of letting
	// the kernel splice.
	Conn net.Conn
	// Dialer opens the outbound connection of a CONNECT. A stage may wrap
	// it to filter, observe or redirect dials (configure): see Dialer for
	// when it runs and what is known then. Never nil when next is called.
	Dialer Dialer
	// Auth decides the accepted methods and checks credentials (configure).
	// When nil, the terminal handler accepts no method at all (fail closed).
	Auth Authenticator
	// IOSize is the relay buffer size in bytes (configure). Zero means the
	// engine's default.
	IOSize int
	// Pacer limits traffic that does not flow through Conn: UDP datagrams
	// (configure). Nil means no limit.
	Pacer Pacer
	// Admissions decide whether the request is served at all (configure:
	// a stage appends its own). The terminal handler asks each in order,
	// once the user and the request are known, for every command.
	Admissions []Admission

	// User is the authenticated user name, "" when there was none (fact).
	// The terminal handler sets the identity fields (User, Role, AuthState)
	// in the ServeConn goroutine before it starts the relay, so a conn
	// wrapper may read them from relay reads and writes without a lock.
	User string
	// Role is the authenticated user's role (fact).
	Role Role
	// AuthState says how the client authenticated (fact).
	AuthState AuthState
	// Command is the SOCKS command the client asked for (fact).
	Command Command
	// Target is the destination exactly as the client asked (fact).
	Target Target
	// Reply is the RFC 1928 REP code sent to the client (fact). ReplySent
	// reports whether any reply was sent at all.
	Reply     Reply
	ReplySent bool
	// Bound is the outbound socket's local address, sent as BND.ADDR (fact).
	Bound netip.AddrPort
	// Up counts bytes relayed from client to target, Down from target to
	// client. The relay updates them per chunk, so they are live (fact).
	Up, Down atomic.Int64
	// Active is when bytes last moved either way, in Unix nanoseconds (0
	// before any); the relay updates it per chunk (fact, live).
	Active atomic.Int64
	// End is when the connection finished (fact, set before the terminal
	// handler returns).
	End time.Time

	// egress is which way the connection left; see SetEgress.
	egress atomic.Pointer[string]
}

// SetEgress records which way the connection leaves the server (fact, set
// by an egress stage when it dials): "direct", "bind=127.0.0.2",
// "via=socks5://up:***@127.0.0.1:1081", never with a password. SESSIONS
// and the connection records show it. It is safe to call while other
// goroutines read it.
func (s *Session) SetEgress(e string) { s.egress.Store(&e) }

// Egress returns what SetEgress recorded, "" when no stage did.
func (s *Session) Egress() string {
	if e := s.egress.Load(); e != nil {
		return *e
	}
	return ""
}

// Bytes returns the bytes relayed so far in both directions.
func (s *Session) Bytes() int64 { return s.Up.Load() + s.Down.Load() }

// Duration is how long the session lasted, or has lasted so far.
func (s *Session) Duration() time.Duration {
	if s.End.IsZero() {
		return time.Since(s.Start)
	}
	return s.End.Sub(s.Start)
}

// Dialer opens outbound connections; *net.Dialer satisfies it.
//
// When it runs. The engine calls Session.Dialer once per CONNECT, after
// the handshake and the request, with network "tcp" and address
// Target.String(): host:port exactly as the client asked, so a name is
// not resolved yet (resolving it is the Dialer's job, and a policy can
// refuse a name before any lookup) and an IPv6 address is bracketed. ctx
// carries the connect timeout (socks.connect_timeout) and ends with the
// session. The engine never dials again for the session and never retries.
// It never calls the Dialer for BIND or UDP ASSOCIATE: BIND listens for
// the peer and UDP relays datagrams from its own socket, and for those
// the engine asks the chain's Policy stages instead (see Policy).
//
// What is known then. The listener's fields (ID, Start, Client, Logger),
// whatever the stages configured (Conn, Auth, IOSize, Pacer), the
// identity (User, Role, AuthState: authentication has succeeded) and the
// request (Command is CmdConnect, Target). Not yet: Reply, ReplySent and
// Bound are set from the dial's outcome; Up, Down and Active are zero;
// End is zero.
//
// Nesting. Each stage wraps the Dialer it finds, before calling next, so
// the dialers nest in reverse chain order: the last stage of the chain
// that wrapped it is called first, and each passes the dial on to the one
// installed before it, down to the engine's base dialer (which refuses the
// server's own listeners with ReplyNotAllowed).
//
// Refusal. A Dialer refuses by returning an error, without dialing. A
// *ReplyError (anywhere in the error's chain) gives the client its Code:
// a policy returns ReplyNotAllowed. Any other error gets the code
// ReplyFor maps it to (a DNS failure ReplyHostUnreachable, a refused
// connection ReplyConnectionRefused, a timeout ReplyTTLExpired, anything
// unknown ReplyGeneralFailure). The engine sends that reply, records it
// on the Session, and returns the error from the terminal handler as
// DialError gives it, so each stage sees it come back from next, with
// errors.Is and errors.As finding what the Dialer wrapped.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// NameDialer is implemented by a Dialer that may hand a host name to an
// upstream proxy unresolved (the upstream resolves it, as curl's
// --socks5-hostname does). A policy dialer wrapping it asks before it
// resolves a name itself: when DialsName is true, it decides on the name
// alone and passes host:port on as it is.
type NameDialer interface {
	Dialer
	// DialsName reports whether a dial of address (host:port, host a
	// name) would be handed to an upstream unresolved.
	DialsName(network, address string) bool
}

// SocketControl is called on an outbound socket after it is created and
// before it connects, as net.Dialer's ControlContext is: an egress stage
// uses it to bind the socket to a local address or an interface.
type SocketControl func(ctx context.Context, network, address string, c syscall.RawConn) error

type socketControlKey struct{}

// WithSocketControl returns ctx carrying f, for a dial through the
// Session's Dialer: the engine's own dialer calls every SocketControl the
// dial's ctx carries, in the order they were added, after its own checks.
func WithSocketControl(ctx context.Context, f SocketControl) context.Context {
	prev := SocketControls(ctx)
	return context.WithValue(ctx, socketControlKey{}, append(prev[:len(prev):len(prev)], f))
}

// SocketControls returns the SocketControls ctx carries.
func SocketControls(ctx context.Context) []SocketControl {
	fs, _ := ctx.Value(socketControlKey{}).([]SocketControl)
	return fs
}

// Admission is what a stage installs (on Session.Admissions) to admit or
// refuse a request by who asks and what: a limit on a user's connections,
// say. Unlike a Dialer, which only CONNECT uses, it is asked for every
// command: CONNECT, BIND and UDP ASSOCIATE alike.
type Admission interface {
	// Admit is called once per session, in the goroutine that called the
	// chain, after authentication and the request (User, Role, Command and
	// Target are set) and before the engine dials, listens for the BIND
	// peer or opens the UDP relay. A non-nil error refuses the request: a
	// *ReplyError's code is the reply the client gets, otherwise 0x01.
	// What Admit takes, the stage gives back after next returns.
	Admit(ctx context.Context, s *Session) error
}

// Target is a SOCKS destination as the client sent it: either an IP address
// or a domain name, and a port.
type Target struct {
	// Addr is set when the client sent an IPv4 or IPv6 address.
	Addr netip.Addr
	// Name is set when the client sent a domain name.
	Name string
	Port uint16
}

// Host returns the address or name as the client asked for it.
func (t Target) Host() string {
	if t.Name != "" {
		return t.Name
	}
	if !t.Addr.IsValid() {
		return ""
	}
	return t.Addr.String()
}

// String returns host:port, bracketing IPv6 addresses.
func (t Target) String() string {
	return net.JoinHostPort(t.Host(), strconv.Itoa(int(t.Port)))
}

// Role is a user's role.
type Role uint8

// Roles. ADMIN users may also log in to the PCTP admin port.
const (
	RoleBasic Role = iota + 1
	RoleAdmin
)

// String returns "Admin" or "Basic", as PCTP's LIST prints them.
func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "Admin"
	case RoleBasic:
		return "Basic"
	}
	return "None"
}

// ParseRole accepts admin or basic in any case.
func ParseRole(s string) (Role, error) {
	switch {
	case strings.EqualFold(s, "admin"):
		return RoleAdmin, nil
	case strings.EqualFold(s, "basic"):
		return RoleBasic, nil
	}
	return 0, ErrUnknownRole
}

// AuthState says how a client authenticated, as PCTP's LOGS prints it.
type AuthState uint8

// Authentication states. AuthNone means the handshake never got as far as
// choosing a method.
const (
	AuthNone AuthState = iota
	AuthNoAuth
	AuthOK
	AuthFailed
)

// String returns the LOGS field: Auth, NoAuth or Failed ("-" for none).
func (a AuthState) String() string {
	switch a {
	case AuthNoAuth:
		return "NoAuth"
	case AuthOK:
		return "Auth"
	case AuthFailed:
		return "Failed"
	}
	return "-"
}

// Command is an RFC 1928 command.
type Command uint8

// RFC 1928 commands.
const (
	CmdConnect      Command = 0x01
	CmdBind         Command = 0x02
	CmdUDPAssociate Command = 0x03
)

// String names the command.
func (c Command) String() string {
	switch c {
	case CmdConnect:
		return "CONNECT"
	case CmdBind:
		return "BIND"
	case CmdUDPAssociate:
		return "UDP"
	case 0:
		return "-"
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// Protocol is the protocol a client speaks on a front door.
type Protocol uint8

// Protocols. The zero value is SOCKS5, so a Session made without a
// listener (tests) speaks SOCKS.
const (
	ProtocolSOCKS5 Protocol = iota
	ProtocolHTTP
)

// String returns "socks5" or "http".
func (p Protocol) String() string {
	if p == ProtocolHTTP {
		return "http"
	}
	return "socks5"
}

// Method is an RFC 1928 authentication method.
type Method uint8

// Methods socks5d knows.
const (
	MethodNoAuth       Method = 0x00
	MethodPassword     Method = 0x02
	MethodNoAcceptable Method = 0xFF
)

// User is a user as an administrator sees it: a name and a role, never the
// password.
type User struct {
	Name string
	Role Role
}

// ClientGroup groups a client address with the neighbours an attacker is
// likely to hold too, for counting failures per source: the address itself
// for IPv4 (IPv4-mapped IPv6 included), its /64 for IPv6. An invalid
// address falls in one shared group (the zero Prefix).
func ClientGroup(a netip.Addr) netip.Prefix { return ClientNetwork(a, 32, 64) }

// ClientNetwork is ClientGroup with the prefix lengths given: a's first
// bits4 bits for IPv4 (IPv4-mapped IPv6 included), its first bits6 bits for
// IPv6. An invalid address, or a length out of range, falls in one shared
// group (the zero Prefix).
func ClientNetwork(a netip.Addr, bits4, bits6 int) netip.Prefix {
	a = a.Unmap()
	bits := bits4
	if a.Is6() {
		bits = bits6
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
