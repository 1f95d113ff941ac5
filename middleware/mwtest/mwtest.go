// Package mwtest has fakes for testing a middleware stage without the
// engine: parameters, a user table, a session over an in-memory conn, a
// scripted terminal handler (Terminal), and helpers that follow the
// engine's own rules: Connect serves a CONNECT as the engine does (dial
// through s.Dialer, the same reply codes), Stat reads one STATS key, and
// Set applies a live change as PCTP's CONFIG does.
package mwtest

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Users is a fake user table: name → password and role.
type Users map[string]struct {
	Password string
	Role     middleware.Role
}

// Verify implements middleware.Credentials. Like the engine's table, it
// calls spend (when not nil) before every check that fails, standing in for
// the slow hash, and fails without comparing when spend returns false.
func (u Users) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	e, ok := u[name]
	if ok && subtle.ConstantTimeCompare([]byte(e.Password), []byte(password)) == 1 {
		return e.Role, true
	}
	if spend != nil {
		spend()
	}
	return 0, false
}

// Len implements middleware.Credentials.
func (u Users) Len() int { return len(u) }

// Has implements middleware.UserLookup.
func (u Users) Has(name string) bool {
	_, ok := u[name]
	return ok
}

var (
	_ middleware.Credentials = Users(nil)
	_ middleware.UserLookup  = Users(nil)
)

// Params returns parameters for a stage named name with configuration cfg,
// a fresh shared pool and an empty user table.
func Params(name string, cfg map[string]any) middleware.Params {
	return middleware.Params{
		Name:   name,
		Config: cfg,
		Logger: hclog.NewNullLogger(),
		Shared: middleware.NewShared(),
		Users:  Users{},
	}
}

// New builds a stage of the registered type typ with configuration cfg
// and activates it (middleware.Activator), as the engine does once the
// chain holding it is live. Use Build for a stage that a failed change
// built and never installed.
func New(t testing.TB, typ string, p middleware.Params) middleware.Middleware {
	t.Helper()
	info, ok := middleware.Lookup(typ)
	if !ok {
		t.Fatalf("stage type %q is not registered", typ)
	}
	mw, err := info.New(p)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	middleware.Activate(mw)
	return mw
}

// Session returns a session whose client conn is one end of an in-memory
// pipe; the other end is returned for the test to play the client. Both are
// closed when the test ends.
func Session(t testing.TB) (*middleware.Session, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	return &middleware.Session{
		ID:     1,
		Start:  time.Now(),
		Client: netip.MustParseAddrPort("127.0.0.1:40000"),
		Logger: hclog.NewNullLogger(),
		Conn:   server,
		Dialer: &net.Dialer{},
	}, client
}

// Terminal is a scripted terminal handler: it records the session it was
// given and then applies Facts to it, as the engine would after a handshake.
type Terminal struct {
	// Facts, if set, fills the session's final facts (user, reply, bytes...).
	Facts func(s *middleware.Session)
	// Err is returned by ServeConn.
	Err error

	mu   sync.Mutex
	seen []*middleware.Session
}

// ServeConn implements middleware.Handler.
func (tm *Terminal) ServeConn(_ context.Context, s *middleware.Session) error {
	tm.mu.Lock()
	tm.seen = append(tm.seen, s)
	tm.mu.Unlock()
	if tm.Facts != nil {
		tm.Facts(s)
	}
	if s.End.IsZero() {
		s.End = time.Now()
	}
	return tm.Err
}

// Seen returns the sessions the terminal handler was called with.
func (tm *Terminal) Seen() []*middleware.Session {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]*middleware.Session(nil), tm.seen...)
}

// Serve runs one session through mw and the terminal handler.
func Serve(ctx context.Context, mw middleware.Middleware, tm middleware.Handler, s *middleware.Session) error {
	return mw.Wrap(tm).ServeConn(ctx, s)
}

// ExpectError fails the test unless err wraps every error in is and its
// text mentions every string in mentions (a key's name, say).
func ExpectError(t testing.TB, err error, is []error, mentions ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want %v", is)
		return
	}
	for _, want := range is {
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want it to wrap %v", err, want)
		}
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

// Build builds a stage of the registered type typ with p and returns New's
// error, for configuration tables that expect some to fail. The stage is
// not activated: it is what a change that failed elsewhere built.
func Build(t testing.TB, typ string, p middleware.Params) (middleware.Middleware, error) {
	t.Helper()
	info, ok := middleware.Lookup(typ)
	if !ok {
		t.Fatalf("stage type %q is not registered", typ)
	}
	return info.New(p)
}
