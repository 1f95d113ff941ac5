package mwtest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultConnectTimeout is the connect timeout Connect uses when its
// Timeout is zero: the engine's default (socks.connect_timeout).
const DefaultConnectTimeout = 10 * time.Second

// Connect is a terminal handler that serves a CONNECT the way the engine's
// does once the handshake is over, so a stage that wraps the Dialer is
// tested against the engine's behaviour rather than a copy of it:
//
//   - it sets the identity (User, Role, AuthState: AuthOK with a User,
//     AuthNoAuth without) and the request (Command CmdConnect, Target),
//     all before dialing, as the engine does;
//   - it dials Target.String() (host:port, the name unresolved) once,
//     with network "tcp", through s.Dialer, under the connect timeout;
//   - a failed dial gets the reply middleware.ReplyFor gives (a stage's
//     *ReplyError keeps its code), and ServeConn returns the error
//     middleware.DialError gives, exactly what the engine returns;
//   - a successful dial gets ReplySucceeded and Bound (the outbound
//     conn's local address, when it is an IP), then Relay runs with the
//     conn, which is closed after.
//
// End is set when it returns. The handshake itself (methods, RFC 1929)
// is not played: test an Authenticator by calling it, and the wire
// through the real server.
type Connect struct {
	// Target is the destination the client asks for.
	Target middleware.Target
	// User and Role are the authenticated identity; User "" is a client
	// that chose no authentication.
	User string
	Role middleware.Role
	// Timeout is the connect timeout; zero means DefaultConnectTimeout.
	Timeout time.Duration
	// Relay, if set, plays the relay with the outbound conn after the
	// success reply (it may move bytes and count them on s.Up and s.Down);
	// its error is what ServeConn returns.
	Relay func(s *middleware.Session, conn net.Conn) error

	mu   sync.Mutex
	seen []*middleware.Session
}

var _ middleware.Handler = (*Connect)(nil)

// ServeConn implements middleware.Handler.
func (c *Connect) ServeConn(ctx context.Context, s *middleware.Session) error {
	c.mu.Lock()
	c.seen = append(c.seen, s)
	c.mu.Unlock()
	defer func() { s.End = time.Now() }()
	s.User, s.Role, s.AuthState = c.User, c.Role, middleware.AuthNoAuth
	if c.User != "" {
		s.AuthState = middleware.AuthOK
	}
	s.Command, s.Target = middleware.CmdConnect, c.Target
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := s.Dialer.DialContext(dctx, "tcp", s.Target.String())
	cancel()
	if err != nil {
		err = middleware.DialError(err)
		s.Reply, s.ReplySent = middleware.ReplyFor(err), true
		return err
	}
	defer conn.Close()
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		s.Bound = a.AddrPort()
	} else if conn.LocalAddr() != nil {
		s.Bound, _ = netip.ParseAddrPort(conn.LocalAddr().String())
	}
	s.Reply, s.ReplySent = middleware.ReplySucceeded, true
	if c.Relay != nil {
		return c.Relay(s, conn)
	}
	return nil
}

// Seen returns the sessions the handler was called with.
func (c *Connect) Seen() []*middleware.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*middleware.Session(nil), c.seen...)
}

// Stat returns the value of one STATS key of mw, as the stage prints it
// (the key a stage named by its type shows in STATS; see
// middleware.StatsSource for the naming rule). ok is false when mw keeps
// no statistics or not that key.
func Stat(mw middleware.Middleware, key string) (value int64, ok bool) {
	src, isSource := mw.(middleware.StatsSource)
	if !isSource {
		return 0, false
	}
	for _, s := range src.Stats() {
		if s.Key == key {
			return s.Value, true
		}
	}
	return 0, false
}

// Set applies a live change of one setting to a stage of the registered
// type typ built from p, the way the engine applies PCTP's CONFIG
// <stage>.<key>=<text> (see middleware.Tunable): the stage must list key
// as a setting; text is read by middleware.ParseValue; and the stage is
// rebuilt by New from a copy of p whose Config holds the value under key,
// with the same Shared pool, so state kept there carries over, and
// activated (middleware.Activator) as the engine activates the stages of
// a chain that went live; the stage Set builds from p to check key is
// cleaned up (middleware.Cleaner), the caller's own stages are not. It returns
// the new stage and the parameters it was built from (for a further Set),
// or the error that refused the change; p is not changed. It needs no
// testing.TB, so an Example can show a change too.
func Set(typ string, p middleware.Params, key, text string) (middleware.Middleware, middleware.Params, error) {
	info, ok := middleware.Lookup(typ)
	if !ok {
		return nil, p, fmt.Errorf("%w: %q", ErrNotRegistered, typ)
	}
	live, err := info.New(p)
	if err != nil {
		return nil, p, fmt.Errorf("the stage before the change: %w", err)
	}
	defer middleware.Cleanup(live)
	if !middleware.IsSetting(live, key) {
		return nil, p, fmt.Errorf("%w %q of %s (settings: %s)", ErrNotASetting, key, typ, strings.Join(settingKeys(live), ", "))
	}
	v, err := middleware.ParseValue(text)
	if err != nil {
		return nil, p, fmt.Errorf("%s: %w", key, err)
	}
	next := p
	next.Config = maps.Clone(p.Config)
	if next.Config == nil {
		next.Config = map[string]any{}
	}
	next.Config[key] = v
	mw, err := info.New(next)
	if err != nil {
		return nil, p, err
	}
	middleware.Activate(mw)
	return mw, next, nil
}

// settingKeys lists the keys a Tunable stage lists.
func settingKeys(mw middleware.Middleware) []string {
	t, ok := mw.(middleware.Tunable)
	if !ok {
		return []string{"none"}
	}
	var keys []string
	for _, s := range t.Settings() {
		keys = append(keys, s.Key)
	}
	return keys
}
