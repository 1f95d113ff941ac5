package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/middleware"
)

// Test-only stages, registered the way any stage is. Core's tests cannot use
// the builtin stages (core never imports builtin), so these stand in.
func init() {
	middleware.Register(middleware.Info{Type: "test.auth", New: newTestAuth})
	middleware.Register(middleware.Info{Type: "test.iosize", New: newTestIOSize})
	middleware.Register(middleware.Info{Type: "test.dial", New: newTestDial})
	middleware.Register(middleware.Info{Type: "test.wrap", New: newTestWrap})
	middleware.Register(middleware.Info{Type: "test.first", New: newTestWrap, Before: []string{"test.wrap"}})
	middleware.Register(middleware.Info{Type: "test.panic", New: newTestPanic})
	middleware.Register(middleware.Info{Type: "test.list", New: newTestList})
	middleware.Register(middleware.Info{Type: "test.stats", New: newTestStats})
	middleware.Register(middleware.Info{Type: "test.stats2", New: newTestStats})
}

// testStats prints the configured STATS keys, each with value 1.
type testStats struct{ keys []string }

func newTestStats(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Keys []string `json:"keys"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return &testStats{keys: cfg.Keys}, nil
}

func (st *testStats) Wrap(next middleware.Handler) middleware.Handler { return next }

func (st *testStats) Stats() []middleware.Stat {
	out := make([]middleware.Stat, len(st.keys))
	for i, k := range st.keys {
		out[i] = middleware.Stat{Key: k, Value: 1}
	}
	return out
}

// testList has an editable list of words; "bad" is refused.
type testList struct{ items []string }

func newTestList(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Items []string `json:"items"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	for _, it := range cfg.Items {
		if it == "bad" {
			return nil, fmt.Errorf("%w: bad item", middleware.ErrBadValue)
		}
	}
	return &testList{items: cfg.Items}, nil
}

func (l *testList) Wrap(next middleware.Handler) middleware.Handler { return next }

func (l *testList) Items(key string) ([]string, bool) {
	if key != "items" {
		return nil, false
	}
	return append([]string{}, l.items...), true
}

func (l *testList) ParseItem(key, text string) (any, error) {
	if text == "" {
		return nil, fmt.Errorf("%w: empty item", middleware.ErrBadValue)
	}
	return text, nil
}

// testAuth checks users against the live table; anonymous: true lets
// clients in without credentials.
type testAuth struct {
	users     middleware.Credentials
	anonymous bool
}

// noSlowChecks is test.auth's budget of bcrypt comparisons: none, as the
// auth stage's guard answers a client out of checks, so the barrage's
// floods of wrong passwords cost no CPU. Users with a digest (plaintext or
// added at run time) still log in; users_test.go covers bcrypt itself.
func noSlowChecks() bool { return false }

func newTestAuth(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Anonymous bool `json:"anonymous"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return &testAuth{users: p.Users, anonymous: cfg.Anonymous}, nil
}

func (a *testAuth) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Auth = a
		return next.ServeConn(ctx, s)
	})
}

func (a *testAuth) Accepts(m middleware.Method) bool {
	return (m == middleware.MethodPassword && a.users.Len() > 0) || (m == middleware.MethodNoAuth && a.anonymous)
}

func (a *testAuth) Authenticate(_ context.Context, user, pass string) (middleware.Role, error) {
	if role, ok := a.users.Verify(user, pass, noSlowChecks); ok {
		return role, nil
	}
	return 0, middleware.ErrBadCredentials
}

func (a *testAuth) AllowsAnonymous() bool { return a.anonymous }

// testIOSize sets the IO size and is Tunable.
type testIOSize struct{ size int }

func newTestIOSize(p middleware.Params) (middleware.Middleware, error) {
	cfg := struct {
		Size int `json:"size"`
	}{Size: 4096}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Size < 1 {
		return nil, fmt.Errorf("%w: size must be positive", middleware.ErrBadValue)
	}
	return &testIOSize{size: cfg.Size}, nil
}

func (t *testIOSize) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.IOSize = t.size
		return next.ServeConn(ctx, s)
	})
}

func (t *testIOSize) Settings() []middleware.Setting {
	return []middleware.Setting{{Key: "size", Value: strconv.Itoa(t.size)}}
}

// Purpose declares size as the IO size.
func (t *testIOSize) Purpose(p middleware.Purpose) (string, bool) {
	return "size", p == middleware.PurposeIOSize
}

// testDial makes every dial fail with the configured error, and keeps
// the errors next returned in the shared pool (see dialOutcomes).
type testDial struct {
	err  error
	seen *errorLog
}

// errorLog keeps the errors a stage saw next return.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// dialOutcomes returns the errors the test.dial stage named name saw.
func dialOutcomes(rt *Runtime, name string) *errorLog {
	return middleware.Get(rt.shared, name, func() *errorLog { return &errorLog{} })
}

var dialErrors = map[string]error{
	"netunreach": &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ENETUNREACH},
	"timeout":    context.DeadlineExceeded,
	"denied":     &middleware.ReplyError{Code: middleware.ReplyNotAllowed},
	"blocked":    fmt.Errorf("test.dial: %w", &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: errTestBlocked}),
	"other":      errors.New("something else"),
}

func newTestDial(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Fail string `json:"fail"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return &testDial{err: dialErrors[cfg.Fail], seen: middleware.Get(p.Shared, p.Name, func() *errorLog { return &errorLog{} })}, nil
}

// errTestBlocked is the cause behind the "blocked" refusal.
var errTestBlocked = errors.New("test.dial: port blocked")

func (d *testDial) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		if d.err != nil {
			s.Dialer = failDialer{d.err}
		}
		err := next.ServeConn(ctx, s)
		d.seen.add(err)
		return err
	})
}

type failDialer struct{ err error }

func (f failDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, f.err
}

// testWrap wraps the client conn, forcing the buffered relay path.
type testWrap struct{}

func newTestWrap(p middleware.Params) (middleware.Middleware, error) {
	return testWrap{}, p.Decode(&struct{}{})
}

func (testWrap) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Conn = wrappedConn{s.Conn.(*net.TCPConn)}
		return next.ServeConn(ctx, s)
	})
}

type wrappedConn struct{ *net.TCPConn }

// testPanic panics for every connection.
type testPanic struct{}

func newTestPanic(middleware.Params) (middleware.Middleware, error) { return testPanic{}, nil }

func (testPanic) Wrap(middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(context.Context, *middleware.Session) error { panic("test panic") })
}

// stage is shorthand for a chain entry.
func stage(typ string, kv ...any) StageConfig {
	st := StageConfig{Type: typ, Name: typ, Config: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		st.Config[kv[i].(string)] = kv[i+1]
	}
	return st
}

// testConfig returns a configuration with one admin (admin/password), one
// basic user (bob/builder) and the given chain.
func testConfig(chain ...StageConfig) *Config {
	return &Config{
		SOCKS: SOCKSConfig{Address: "127.0.0.1", HandshakeTimeout: 2 * time.Second, ConnectTimeout: 2 * time.Second, Linger: 5 * time.Second},
		Users: []UserConfig{{Name: "admin", Password: "password", Role: "admin"}, {Name: "bob", Password: "builder", Role: "basic"}},
		Chain: chain,
	}
}

// startProxy starts a runtime on 127.0.0.1:0 and returns it with its address.
func startProxy(t testing.TB, cfg *Config) (*Runtime, string) {
	t.Helper()
	rt := newRuntime(t, cfg)
	return rt, serveListener(t, rt, ListenerSpec{Name: DefaultListener, Protocol: ProtoSOCKS5})
}

// echoServer is testnet.EchoOn: an echo that half-closes when the client
// does, and never splices.
func echoServer(t testing.TB, network, addr string) string {
	t.Helper()
	return testnet.EchoOn(t, network, addr)
}

// socksDialer is a real SOCKS5 client (golang.org/x/net/proxy).
func socksDialer(t testing.TB, proxyAddr, user, pass string) proxy.Dialer {
	t.Helper()
	var auth *proxy.Auth
	if user != "" {
		auth = &proxy.Auth{User: user, Password: pass}
	}
	d, err := proxy.SOCKS5("tcp", proxyAddr, auth, &net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rawConn dials the proxy for byte-level tests, with a deadline.
func rawConn(t testing.TB, proxyAddr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly n bytes.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// expectClosed asserts that the peer closes c (EOF or reset) without
// sending more.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("want close, got %d bytes (%v), err %v", n, b[:n], err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection was not closed: %v", err)
	}
}
