package mwtest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// recordingDialer records what it was asked to dial, then dials for real
// (loopback only in these tests) or fails with err.
type recordingDialer struct {
	err error

	mu    sync.Mutex
	asked []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, network+" "+address)
	d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func loopbackListener(t *testing.T) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

// TestConnectLikeTheEngine: the dialing terminal dials once, "tcp", the
// target as asked, records success with the bound address, and relays.
func TestConnectLikeTheEngine(t *testing.T) {
	ln, port := loopbackListener(t)
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	d := &recordingDialer{}
	s, _ := mwtest.Session(t)
	s.Dialer = d
	var got string
	tm := &mwtest.Connect{
		Target: middleware.Target{Name: "localhost", Port: port},
		User:   "alice", Role: middleware.RoleBasic,
		Relay: func(s *middleware.Session, conn net.Conn) error {
			b := make([]byte, 2)
			n, err := conn.Read(b)
			got = string(b[:n])
			s.Down.Add(int64(n))
			return err
		},
	}
	if err := mwtest.Serve(context.Background(), middleware.MiddlewareFunc(func(next middleware.Handler) middleware.Handler { return next }), tm, s); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp localhost:" + strconv.Itoa(int(port))}; len(d.asked) != 1 || d.asked[0] != want[0] {
		t.Errorf("dialed %q, want %q", d.asked, want)
	}
	if s.Reply != middleware.ReplySucceeded || !s.ReplySent || !s.Bound.Addr().IsLoopback() || got != "hi" || s.Down.Load() != 2 {
		t.Errorf("reply %v sent %v bound %v relayed %q (%d)", s.Reply, s.ReplySent, s.Bound, got, s.Down.Load())
	}
	if s.User != "alice" || s.AuthState != middleware.AuthOK || s.Command != middleware.CmdConnect || s.End.IsZero() {
		t.Errorf("facts: user %q auth %v cmd %v end %v", s.User, s.AuthState, s.Command, s.End)
	}
	if len(tm.Seen()) != 1 {
		t.Errorf("Seen = %d sessions", len(tm.Seen()))
	}
}

// TestConnectFailures: failures get the engine's reply codes and errors.
func TestConnectFailures(t *testing.T) {
	ln, port := loopbackListener(t)
	ln.Close() // nothing listens there now: refused
	sentinel := errors.New("blocked")
	refusal := &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: sentinel}
	for _, tc := range []struct {
		name string
		err  error // the dialer's; nil dials for real
		want middleware.Reply
	}{
		{"refused", nil, middleware.ReplyConnectionRefused},
		{"a stage's refusal", refusal, middleware.ReplyNotAllowed},
		{"unreachable", &net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, middleware.ReplyNetworkUnreachable},
		{"no such host", &net.DNSError{Err: "no such host", IsNotFound: true}, middleware.ReplyHostUnreachable},
		{"timed out", context.DeadlineExceeded, middleware.ReplyTTLExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := mwtest.Session(t)
			s.Dialer = &recordingDialer{err: tc.err}
			tm := &mwtest.Connect{Target: middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: port}}
			err := tm.ServeConn(context.Background(), s)
			var re *middleware.ReplyError
			if !errors.As(err, &re) || re.Code != tc.want || s.Reply != tc.want || !s.ReplySent {
				t.Fatalf("err %v, reply %v; want a ReplyError and reply %v", err, s.Reply, tc.want)
			}
			if tc.err == refusal && err != error(refusal) {
				t.Errorf("a stage's refusal was wrapped again: %v", err)
			}
			if s.AuthState != middleware.AuthNoAuth || s.Bound.IsValid() {
				t.Errorf("auth %v bound %v", s.AuthState, s.Bound)
			}
		})
	}
}

// knob is a test stage with one live setting and a counter kept in the
// shared pool.
type knob struct {
	level int
	count *int
}

func init() {
	middleware.Register(middleware.Info{Type: "mwtest.knob", Doc: "a test stage", New: func(p middleware.Params) (middleware.Middleware, error) {
		cfg := struct {
			Level int `json:"level"`
		}{Level: 1}
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		if cfg.Level < 1 {
			return nil, middleware.ErrBadValue
		}
		return &knob{level: cfg.Level, count: middleware.Get(p.Shared, p.Name, func() *int { return new(int) })}, nil
	}})
}

func (k *knob) Wrap(next middleware.Handler) middleware.Handler { return next }

func (k *knob) Settings() []middleware.Setting {
	return []middleware.Setting{{Key: "level", Value: strconv.Itoa(k.level)}}
}

func (k *knob) Stats() []middleware.Stat {
	return []middleware.Stat{{Key: "knob_level", Value: int64(k.level)}, {Key: "knob_count", Value: int64(*k.count)}}
}

func TestSetAndStat(t *testing.T) {
	p := mwtest.Params("mwtest.knob", map[string]any{"level": 2})
	mw := mwtest.New(t, "mwtest.knob", p)
	*mw.(*knob).count = 7
	if v, ok := mwtest.Stat(mw, "knob_level"); !ok || v != 2 {
		t.Errorf("Stat(knob_level) = %d, %v", v, ok)
	}
	if _, ok := mwtest.Stat(mw, "nope"); ok {
		t.Error("Stat found a key the stage does not print")
	}

	mw2, p2, err := mwtest.Set("mwtest.knob", p, "level", "5")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := mwtest.Stat(mw2, "knob_level"); v != 5 {
		t.Errorf("level after Set = %d, want 5", v)
	}
	if v, _ := mwtest.Stat(mw2, "knob_count"); v != 7 {
		t.Errorf("count after Set = %d, want 7 (state in Shared carries over)", v)
	}
	if p.Config["level"] != 2 || p2.Config["level"] != 5 {
		t.Errorf("params: before %v, after %v", p.Config, p2.Config)
	}

	for _, tc := range []struct {
		key, text string
		is        error
	}{
		{"colour", "red", mwtest.ErrNotASetting},
		{"level", "0", middleware.ErrBadValue},      // New refuses it
		{"level", "", middleware.ErrBadValue},       // not a value
		{"level", "a: b", middleware.ErrBadValue},   // YAML the reader refuses
		{"level", "ten", middleware.ErrBadValue},    // a string for an int
		{"level", "[1, 2]", middleware.ErrBadValue}, // a list for an int
	} {
		if _, _, err := mwtest.Set("mwtest.knob", p, tc.key, tc.text); !errors.Is(err, tc.is) {
			t.Errorf("Set(%s=%q): err = %v, want %v", tc.key, tc.text, err, tc.is)
		}
	}
	if _, _, err := mwtest.Set("mwtest.nope", p, "level", "1"); !errors.Is(err, mwtest.ErrNotRegistered) {
		t.Errorf("unregistered type: err = %v", err)
	}
}
