package limits_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/builtin/limits"
	"github.com/socks5d/socks5d/internal/testlog"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

func TestConfig(t *testing.T) {
	auto := strconv.Itoa(limits.AutomaticMax())
	tests := []struct {
		name    string
		cfg     map[string]any
		want    [3]string // max_connections, per_ip, per_user
		wantErr []error
		errHas  []string
	}{
		{name: "defaults", cfg: nil, want: [3]string{auto, "0", "0"}},
		{name: "empty", cfg: map[string]any{}, want: [3]string{auto, "0", "0"}},
		{name: "max_connections", cfg: map[string]any{"max_connections": 500}, want: [3]string{"500", "0", "0"}},
		{name: "max_connections 0 is automatic", cfg: map[string]any{"max_connections": 0}, want: [3]string{auto, "0", "0"}},
		{name: "max_connections 1", cfg: map[string]any{"max_connections": 1}, want: [3]string{"1", "0", "0"}},
		{name: "per_ip", cfg: map[string]any{"per_ip": 10}, want: [3]string{auto, "10", "0"}},
		{name: "per_user", cfg: map[string]any{"per_user": 4}, want: [3]string{auto, "0", "4"}},
		{name: "all", cfg: map[string]any{"max_connections": 1000, "per_ip": 20, "per_user": 8},
			want: [3]string{"1000", "20", "8"}},
		{name: "negative max_connections", cfg: map[string]any{"max_connections": -1},
			wantErr: []error{middleware.ErrBadValue, limits.ErrNegative}, errHas: []string{`"max_connections"`, "-1"}},
		{name: "negative per_ip", cfg: map[string]any{"per_ip": -5},
			wantErr: []error{middleware.ErrBadValue, limits.ErrNegative}, errHas: []string{`"per_ip"`, "-5"}},
		{name: "negative per_user", cfg: map[string]any{"per_user": -2},
			wantErr: []error{middleware.ErrBadValue, limits.ErrNegative}, errHas: []string{`"per_user"`, "-2"}},
		{name: "unknown key", cfg: map[string]any{"max_conns": 10},
			wantErr: []error{middleware.ErrUnknownKey},
			errHas:  []string{`"max_conns"`, "max_connections", "per_ip", "per_user"}},
		{name: "wrong type", cfg: map[string]any{"per_ip": "ten"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"per_ip"`}},
		{name: "fraction", cfg: map[string]any{"per_user": 1.5},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"per_user"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, limits.Type, mwtest.Params("limits", tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tun, ok := mw.(middleware.Tunable)
			if !ok {
				t.Fatal("stage does not implement Tunable")
			}
			st := tun.Settings()
			if len(st) != 3 {
				t.Fatalf("Settings = %+v", st)
			}
			for i, key := range []string{"max_connections", "per_ip", "per_user"} {
				if st[i].Key != key || st[i].Value != tt.want[i] || st[i].Help == "" {
					t.Errorf("setting %d = %+v, want %s: %s", i, st[i], key, tt.want[i])
				}
			}
			if !strings.Contains(st[0].Help, "0 = automatic") {
				t.Errorf("max_connections help %q does not say 0 is automatic", st[0].Help)
			}
		})
	}
}

func TestAutomaticMax(t *testing.T) {
	if n := limits.AutomaticMax(); n < 1 {
		t.Errorf("AutomaticMax = %d, want at least 1", n)
	}
}

// userKey carries the user the scripted engine authenticates as.
type userKey struct{}

// entry is what the holder reports when a session reaches it.
type entry struct {
	s       *middleware.Session
	dialErr error
}

// holder plays the engine: it authenticates the user found in ctx (if
// any); when dial is set it makes the request found in ctx (CONNECT by
// default) as the engine does: it asks the session's admissions and, for
// a CONNECT they admit, dials through the session's Dialer. It reports the
// session, then holds it open until the session's own release channel or
// the holder's all is closed.
type holder struct {
	dial    bool
	calls   atomic.Int64
	entered chan entry
	all     chan struct{}
	once    sync.Once
}

func newHolder(t *testing.T, dial bool) *holder {
	h := &holder{dial: dial, entered: make(chan entry, 64), all: make(chan struct{})}
	t.Cleanup(h.releaseAll)
	return h
}

func (h *holder) releaseAll() { h.once.Do(func() { close(h.all) }) }

func (h *holder) ServeConn(ctx context.Context, s *middleware.Session) error {
	h.calls.Add(1)
	var dialErr error
	if user, _ := ctx.Value(userKey{}).(string); user != "" {
		s.User, s.AuthState = user, middleware.AuthOK
	}
	if h.dial {
		s.Command = middleware.CmdConnect
		if cmd, ok := ctx.Value(cmdKey{}).(middleware.Command); ok {
			s.Command = cmd
		}
		dialErr = request(ctx, s)
	}
	h.entered <- entry{s: s, dialErr: dialErr}
	release, _ := ctx.Value(releaseKey{}).(chan struct{})
	select {
	case <-release:
	case <-h.all:
	case <-ctx.Done():
	}
	s.End = time.Now()
	return nil
}

// next waits for the next session to reach the holder.
func (h *holder) next(t *testing.T) entry {
	t.Helper()
	select {
	case e := <-h.entered:
		return e
	case <-time.After(wait):
		t.Fatal("no session reached the engine")
		return entry{}
	}
}

// request makes s's request as the engine does: it asks the admissions,
// then, for a CONNECT, dials.
func request(ctx context.Context, s *middleware.Session) error {
	for _, a := range s.Admissions {
		if err := a.Admit(ctx, s); err != nil {
			return err
		}
	}
	if s.Command != middleware.CmdConnect {
		return nil
	}
	c, err := s.Dialer.DialContext(ctx, "tcp", "192.0.2.1:80")
	if c != nil {
		c.Close()
	}
	return err
}

// cmdKey carries the command a held session asks for (CONNECT if absent).
type cmdKey struct{}

// releaseKey carries the channel that ends one held session.
type releaseKey struct{}

// session is one session being served in its own goroutine.
type session struct {
	done    chan error
	release chan struct{}
}

// finish lets the session end, if it is held, and waits until it has.
func (c *session) finish(t *testing.T) {
	t.Helper()
	close(c.release)
	if err := result(t, c); err != nil {
		t.Fatalf("released session ended with %v", err)
	}
}

// start serves one session from client (an address:port) for user ("" =
// anonymous) through h in a goroutine.
func start(t *testing.T, h middleware.Handler, client, user string) *session {
	t.Helper()
	return startDial(t, h, nil, client, user)
}

// startDial is start with d (when not nil) as the session's inner dialer.
func startDial(t *testing.T, h middleware.Handler, d middleware.Dialer, client, user string) *session {
	t.Helper()
	s, _ := mwtest.Session(t)
	s.Client = netip.MustParseAddrPort(client)
	if d != nil {
		s.Dialer = d
	}
	c := &session{done: make(chan error, 1), release: make(chan struct{})}
	ctx := context.WithValue(context.Background(), userKey{}, user)
	ctx = context.WithValue(ctx, releaseKey{}, c.release)
	go func() { c.done <- h.ServeConn(ctx, s) }()
	return c
}

// result waits for the session to end and returns its error.
func result(t *testing.T, c *session) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(wait):
		t.Fatal("session did not end")
		return nil
	}
}

func stats(t *testing.T, mw middleware.Middleware) map[string]int64 {
	t.Helper()
	src, ok := mw.(middleware.StatsSource)
	if !ok {
		t.Fatal("stage does not implement StatsSource")
	}
	m := map[string]int64{}
	for _, st := range src.Stats() {
		m[st.Key] = st.Value
	}
	return m
}

func TestTotalLimit(t *testing.T) {
	const n = 3
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", map[string]any{"max_connections": n}))
	h := newHolder(t, false)
	chain := mw.Wrap(h)

	var open []*session
	for i := range n {
		open = append(open, start(t, chain, "10.0.0."+strconv.Itoa(i+1)+":4000", ""))
		h.next(t)
	}
	err := result(t, start(t, chain, "10.0.0.9:4000", ""))
	if !errors.Is(err, limits.ErrTooManyConnections) {
		t.Fatalf("session %d: err = %v, want ErrTooManyConnections", n+1, err)
	}
	if got := h.calls.Load(); got != n {
		t.Errorf("engine called %d times, want %d: the refused session reached it", got, n)
	}

	// One ends; a new one is admitted, and the limit holds again.
	open[0].finish(t)
	open = append(open[1:], start(t, chain, "10.0.0.9:4001", ""))
	h.next(t)
	if err := result(t, start(t, chain, "10.0.0.9:4002", "")); !errors.Is(err, limits.ErrTooManyConnections) {
		t.Errorf("after re-admission: err = %v, want ErrTooManyConnections", err)
	}

	st := stats(t, mw)
	if st["limit_connections"] != n || st["limit_refused_total"] != 2 {
		t.Errorf("stats = %v, want %d connections, 2 refused by the total", st, n)
	}
	h.releaseAll()
	for _, done := range open {
		if err := result(t, done); err != nil {
			t.Error(err)
		}
	}
	if got := stats(t, mw)["limit_connections"]; got != 0 {
		t.Errorf("limit_connections = %d after every session ended", got)
	}
}

func TestPerIP(t *testing.T) {
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", map[string]any{"max_connections": 100, "per_ip": 2}))
	h := newHolder(t, false)
	chain := mw.Wrap(h)

	a1 := start(t, chain, "10.0.0.1:1000", "")
	h.next(t)
	a2 := start(t, chain, "10.0.0.1:1001", "")
	h.next(t)
	if err := result(t, start(t, chain, "10.0.0.1:1002", "")); !errors.Is(err, limits.ErrTooManyFromIP) {
		t.Fatalf("third from 10.0.0.1: err = %v, want ErrTooManyFromIP", err)
	}
	// The same address written as IPv4-mapped IPv6 is the same client.
	if err := result(t, start(t, chain, "[::ffff:10.0.0.1]:1003", "")); !errors.Is(err, limits.ErrTooManyFromIP) {
		t.Fatalf("mapped 10.0.0.1: err = %v, want ErrTooManyFromIP", err)
	}
	// Another address is not affected.
	b1 := start(t, chain, "10.0.0.2:1000", "")
	h.next(t)
	b2 := start(t, chain, "[2001:db8::2]:1000", "")
	h.next(t)
	if got := h.calls.Load(); got != 4 {
		t.Errorf("engine called %d times, want 4", got)
	}
	// One of a's ends: a may connect again.
	a1.finish(t)
	a3 := start(t, chain, "10.0.0.1:1004", "")
	h.next(t)

	st := stats(t, mw)
	if st["limit_refused_per_ip"] != 2 || st["limit_refused_total"] != 0 || st["limit_connections"] != 4 {
		t.Errorf("stats = %v", st)
	}
	h.releaseAll()
	for _, done := range []*session{a2, a3, b1, b2} {
		if err := result(t, done); err != nil {
			t.Error(err)
		}
	}
}

// fakeDialer stands in for the network: it counts dials, and fails every
// one when fail is set.
type fakeDialer struct {
	dials atomic.Int64
	fail  bool
}

func (d *fakeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	d.dials.Add(1)
	if d.fail {
		return nil, errors.New("fake: connection refused")
	}
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

func TestPerUser(t *testing.T) {
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", map[string]any{"per_user": 2}))
	h := newHolder(t, true)
	chain := mw.Wrap(h)
	d := &fakeDialer{}

	var open []*session
	for i := range 2 {
		open = append(open, startDial(t, chain, d, "10.0.0.1:"+strconv.Itoa(2000+i), "alice"))
		if e := h.next(t); e.dialErr != nil {
			t.Fatalf("alice's dial %d: %v", i+1, e.dialErr)
		}
	}
	// The third of alice's gets reply 0x02 when the engine admits its
	// request, after the handshake; the network is not dialed.
	third := startDial(t, chain, d, "10.0.0.2:2000", "alice")
	e := h.next(t)
	var re *middleware.ReplyError
	if !errors.As(e.dialErr, &re) || re.Code != middleware.ReplyNotAllowed || !errors.Is(e.dialErr, limits.ErrTooManyForUser) {
		t.Fatalf("third dial: err = %v, want a ReplyError 0x02 wrapping ErrTooManyForUser", e.dialErr)
	}
	if got := d.dials.Load(); got != 2 {
		t.Errorf("inner dialer called %d times, want 2", got)
	}
	// Another user and anonymous clients are not affected.
	for _, user := range []string{"bob", "", "", ""} {
		open = append(open, startDial(t, chain, d, "10.0.0.3:2000", user))
		if e := h.next(t); e.dialErr != nil {
			t.Errorf("dial of %q: %v", user, e.dialErr)
		}
	}
	// The refused session ends; alice is still at her limit.
	third.finish(t)
	refused := startDial(t, chain, d, "10.0.0.2:2001", "alice")
	if e := h.next(t); !errors.Is(e.dialErr, limits.ErrTooManyForUser) {
		t.Errorf("dial after a refused session ended: %v, want ErrTooManyForUser", e.dialErr)
	}
	refused.finish(t)
	// One of hers ends (next returns): her place is given back.
	open[0].finish(t)
	open = append(open[1:], startDial(t, chain, d, "10.0.0.1:2002", "alice"))
	if e := h.next(t); e.dialErr != nil {
		t.Errorf("dial after one of alice's ended: %v", e.dialErr)
	}

	st := stats(t, mw)
	if st["limit_refused_per_user"] != 2 || st["limit_connections"] != int64(len(open)) {
		t.Errorf("stats = %v, want 2 refused per user and %d connections", st, len(open))
	}
	h.releaseAll()
	for _, done := range open {
		if err := result(t, done); err != nil {
			t.Error(err)
		}
	}
}

// TestBindAndUDPCountPerUser: a BIND or a UDP association is a connection
// like a CONNECT for the per-user limit, though neither dials: each takes
// the user's place when the engine admits it, and holds it until it ends.
func TestBindAndUDPCountPerUser(t *testing.T) {
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", map[string]any{"per_user": 2}))
	h := newHolder(t, true)
	chain := mw.Wrap(h)
	d := &fakeDialer{}
	startCmd := func(cmd middleware.Command, client string) *session {
		s, _ := mwtest.Session(t)
		s.Client = netip.MustParseAddrPort(client)
		s.Dialer = d
		c := &session{done: make(chan error, 1), release: make(chan struct{})}
		ctx := context.WithValue(context.Background(), userKey{}, "alice")
		ctx = context.WithValue(ctx, releaseKey{}, c.release)
		ctx = context.WithValue(ctx, cmdKey{}, cmd)
		go func() { c.done <- chain.ServeConn(ctx, s) }()
		return c
	}
	bind := startCmd(middleware.CmdBind, "10.0.0.1:5000")
	if e := h.next(t); e.dialErr != nil {
		t.Fatalf("BIND: %v", e.dialErr)
	}
	udp := startCmd(middleware.CmdUDPAssociate, "10.0.0.1:5001")
	if e := h.next(t); e.dialErr != nil {
		t.Fatalf("UDP ASSOCIATE: %v", e.dialErr)
	}
	for _, cmd := range []middleware.Command{middleware.CmdConnect, middleware.CmdBind, middleware.CmdUDPAssociate} {
		refused := startCmd(cmd, "10.0.0.2:5000")
		e := h.next(t)
		var re *middleware.ReplyError
		if !errors.As(e.dialErr, &re) || re.Code != middleware.ReplyNotAllowed || !errors.Is(e.dialErr, limits.ErrTooManyForUser) {
			t.Errorf("third of alice's (%v): %v, want a ReplyError 0x02 wrapping ErrTooManyForUser", cmd, e.dialErr)
		}
		refused.finish(t)
	}
	if got := d.dials.Load(); got != 0 {
		t.Errorf("the network was dialed %d times", got)
	}
	// The BIND ends: its place comes back.
	bind.finish(t)
	connect := startCmd(middleware.CmdConnect, "10.0.0.1:5002")
	if e := h.next(t); e.dialErr != nil {
		t.Errorf("CONNECT after the BIND ended: %v", e.dialErr)
	}
	if st := stats(t, mw); st["limit_refused_per_user"] != 3 {
		t.Errorf("stats = %v, want 3 refused per user", st)
	}
	h.releaseAll()
	for _, done := range []*session{udp, connect} {
		if err := result(t, done); err != nil {
			t.Error(err)
		}
	}
}

// TestAdmitTwiceCountsOnce: a session admitted twice (and dialing twice)
// holds one place.
func TestAdmitTwiceCountsOnce(t *testing.T) {
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", map[string]any{"per_user": 1}))
	d := &fakeDialer{}
	var errs []error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.User, s.Command = "alice", middleware.CmdConnect
		for range 2 {
			errs = append(errs, request(context.Background(), s))
		}
	}}
	for range 2 { // the second session finds the place given back
		errs = nil
		s, _ := mwtest.Session(t)
		s.Dialer = d
		if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || errs[1] != nil {
			t.Errorf("requests = %v, want both to succeed", errs)
		}
	}
}

// TestCountsSurviveRebuild: a second stage built from the same shared pool
// (a live change) sees the sessions of the first, and both give their
// places back when their sessions end.
func TestCountsSurviveRebuild(t *testing.T) {
	p := mwtest.Params("limits", map[string]any{"max_connections": 2, "per_ip": 2, "per_user": 1})
	first := mwtest.New(t, limits.Type, p)
	h := newHolder(t, true)
	d := &fakeDialer{}
	oldChain := first.Wrap(h)

	old1 := startDial(t, oldChain, d, "10.0.0.1:4000", "alice")
	h.next(t)
	old2 := startDial(t, oldChain, d, "10.0.0.2:4000", "")
	h.next(t)

	p.Config = map[string]any{"max_connections": 3, "per_ip": 1, "per_user": 1}
	second := mwtest.New(t, limits.Type, p)
	newChain := second.Wrap(h)
	if got := stats(t, second)["limit_connections"]; got != 2 {
		t.Fatalf("new stage sees %d connections, want the 2 of the old one", got)
	}
	// The old sessions count against the new limits.
	if err := result(t, startDial(t, newChain, d, "10.0.0.1:4001", "")); !errors.Is(err, limits.ErrTooManyFromIP) {
		t.Errorf("10.0.0.1 on the new chain: err = %v, want ErrTooManyFromIP", err)
	}
	aliceAgain := startDial(t, newChain, d, "10.0.0.3:4000", "alice")
	if e := h.next(t); !errors.Is(e.dialErr, limits.ErrTooManyForUser) {
		t.Errorf("alice on the new chain: dial err = %v, want ErrTooManyForUser", e.dialErr)
	}
	if err := result(t, startDial(t, newChain, d, "10.0.0.4:4000", "")); !errors.Is(err, limits.ErrTooManyConnections) {
		t.Errorf("fourth connection on the new chain: err = %v, want ErrTooManyConnections", err)
	}
	// The old chain keeps its own limit of 2.
	if err := result(t, startDial(t, oldChain, d, "10.0.0.5:4000", "")); !errors.Is(err, limits.ErrTooManyConnections) {
		t.Errorf("old chain at 3 connections: err = %v, want ErrTooManyConnections", err)
	}
	aliceAgain.finish(t)

	// The old sessions end: their places come back, for the new stage too.
	old1.finish(t)
	old2.finish(t)
	if got := stats(t, second)["limit_connections"]; got != 0 {
		t.Fatalf("limit_connections = %d after the old sessions ended", got)
	}
	var open []*session
	for i, c := range []struct{ addr, user string }{{"10.0.0.1:4002", "alice"}, {"10.0.0.2:4002", ""}, {"10.0.0.6:4002", ""}} {
		open = append(open, startDial(t, newChain, d, c.addr, c.user))
		if e := h.next(t); e.dialErr != nil {
			t.Errorf("new session %d: dial err = %v", i+1, e.dialErr)
		}
	}
	st := stats(t, first) // the same counts, seen from the old stage
	want := map[string]int64{"limit_connections": 3, "limit_refused_total": 2, "limit_refused_per_ip": 1, "limit_refused_per_user": 1}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, st[k], v, st)
		}
	}
	h.releaseAll()
	for _, done := range open {
		if err := result(t, done); err != nil {
			t.Error(err)
		}
	}
	if got := stats(t, second)["limit_connections"]; got != 0 {
		t.Errorf("limit_connections = %d at the end", got)
	}
}

// TestSeparateNamesSeparateCounts: two limits stages of different names in
// one pool keep their own counts.
func TestSeparateNamesSeparateCounts(t *testing.T) {
	p := mwtest.Params("outer", map[string]any{"max_connections": 1})
	outer := mwtest.New(t, limits.Type, p)
	p.Name = "inner"
	inner := mwtest.New(t, limits.Type, p)
	h := newHolder(t, false)
	chain := outer.Wrap(inner.Wrap(h))
	done := start(t, chain, "10.0.0.1:5000", "")
	h.next(t)
	if a, b := stats(t, outer)["limit_connections"], stats(t, inner)["limit_connections"]; a != 1 || b != 1 {
		t.Errorf("connections outer %d, inner %d, want 1 and 1", a, b)
	}
	h.releaseAll()
	if err := result(t, done); err != nil {
		t.Error(err)
	}
}

// TestStats lists the keys with no traffic.
func TestStats(t *testing.T) {
	mw := mwtest.New(t, limits.Type, mwtest.Params("limits", nil))
	src := mw.(middleware.StatsSource)
	var keys []string
	for _, st := range src.Stats() {
		keys = append(keys, st.Key)
		if st.Value != 0 {
			t.Errorf("%s = %d with no traffic", st.Key, st.Value)
		}
	}
	want := "limit_refused_total limit_refused_per_ip limit_refused_per_user limit_connections"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys = %s, want %s", got, want)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testlog.Buffer

// TestRefusalLogRateLimited: a burst of refusals gives one WARN line per
// second per reason, naming the client, not one per refusal.
func TestRefusalLogRateLimited(t *testing.T) {
	var buf syncBuffer
	p := mwtest.Params("limits", map[string]any{"max_connections": 1, "per_ip": 1})
	p.Logger = hclog.New(&hclog.LoggerOptions{Name: "middleware.limits", Output: &buf, Level: hclog.Info})
	mw := mwtest.New(t, limits.Type, p)
	h := newHolder(t, false)
	chain := mw.Wrap(h)
	held := start(t, chain, "10.0.0.1:6000", "")
	h.next(t)

	const burst = 50
	began := time.Now()
	for i := range burst {
		s, _ := mwtest.Session(t)
		s.Client = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(7000+i))
		if err := chain.ServeConn(context.Background(), s); !errors.Is(err, limits.ErrTooManyConnections) {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	elapsed := time.Since(began)
	h.releaseAll()
	if err := result(t, held); err != nil {
		t.Error(err)
	}

	out := buf.String()
	lines := strings.Count(out, "too many connections")
	if lines < 1 || lines > 1+int(elapsed/time.Second) {
		t.Errorf("%d refusals in %v logged %d lines:\n%s", burst, elapsed, lines, out)
	}
	if !strings.Contains(out, "[WARN]") || !strings.Contains(out, "client=198.51.100.7") {
		t.Errorf("log does not warn with the client address:\n%s", out)
	}
	if got := stats(t, mw)["limit_refused_total"]; got != burst {
		t.Errorf("limit_refused_total = %d, want %d", got, burst)
	}
}
