package quota_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/quota"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// chunk is the relay buffer the tests copy with, the engine's default.
const chunk = 32 << 10

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		wantErr error
		errHas  string
	}{
		{"minimal", map[string]any{"per_user": "10GiB"}, nil, ""},
		{"all keys", map[string]any{"per_user": 1 << 20, "period": "week", "time_zone": "Europe/Madrid", "save_interval": "30s"}, nil, ""},
		{"total", map[string]any{"per_user": "1MB", "period": "total"}, nil, ""},
		{"counting only", map[string]any{}, nil, ""},
		{"zero per_user", map[string]any{"per_user": 0}, nil, ""},
		{"per_user not a size", map[string]any{"per_user": "10 gigs"}, middleware.ErrBadValue, `"per_user"`},
		{"negative per_user", map[string]any{"per_user": -5}, middleware.ErrBadValue, `"per_user"`},
		{"bad period", map[string]any{"per_user": "1GiB", "period": "year"}, middleware.ErrBadValue, `"period"`},
		{"bad zone", map[string]any{"per_user": "1GiB", "time_zone": "Mars/Olympus"}, middleware.ErrBadValue, `"time_zone"`},
		{"local zone", map[string]any{"per_user": "1GiB", "time_zone": "Local"}, middleware.ErrBadValue, `"time_zone"`},
		{"save_interval too short", map[string]any{"per_user": "1GiB", "save_interval": "10ms"}, middleware.ErrBadValue, `"save_interval"`},
		{"unknown key", map[string]any{"per_user": "1GiB", "per_listener": "1GiB"}, middleware.ErrUnknownKey, "per_user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mwtest.Build(t, quota.Type, mwtest.Params("quota", tt.cfg))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			mwtest.ExpectError(t, err, []error{tt.wantErr}, tt.errHas)
		})
	}
}

// bed is a quota stage with an injected clock and a counter store.
type bed struct {
	t      *testing.T
	p      middleware.Params
	mw     middleware.Middleware
	mu     sync.Mutex
	now    time.Time
	closed bool
}

func newBed(t *testing.T, store middleware.CounterStore, now time.Time, cfg map[string]any) *bed {
	t.Helper()
	b := &bed{t: t, now: now}
	b.p = mwtest.Params("quota", cfg)
	b.p.Counters = store
	quota.SetClock(b.p, b.clock)
	b.mw = mwtest.New(t, quota.Type, b.p)
	t.Cleanup(b.stop)
	return b
}

func (b *bed) clock() time.Time { b.mu.Lock(); defer b.mu.Unlock(); return b.now }

func (b *bed) set(t time.Time) { b.mu.Lock(); b.now = t; b.mu.Unlock() }

// stop closes the shared pool, as the server does when it stops: the
// counts are saved.
func (b *bed) stop() {
	if !b.closed {
		b.closed = true
		_ = b.p.Shared.Close()
	}
}

func (b *bed) stat(key string) int64 {
	b.t.Helper()
	for _, s := range b.mw.(middleware.StatsSource).Stats() {
		if s.Key == key {
			return s.Value
		}
	}
	b.t.Fatalf("no STATS key %q", key)
	return 0
}

func (b *bed) used(user string) int64 {
	b.t.Helper()
	stats, ok := b.mw.(middleware.UserStatsSource).UserStats(user)
	if !ok {
		b.t.Fatalf("no user stats for %s", user)
	}
	for _, s := range stats {
		if s.Key == "quota_used_bytes" {
			return s.Value
		}
	}
	b.t.Fatal("no quota_used_bytes")
	return 0
}

// loopback returns the two ends of a TCP connection on 127.0.0.1.
func loopback(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close(); client.Close() })
	return r.c, client
}

// session runs one session of user through the stage with a terminal that
// acts as the engine after the handshake: it sets the user, asks the
// admissions, then runs relay with the session's (wrapped) client conn.
// It returns the admission error, or relay's.
func (b *bed) session(user string, relay func(c net.Conn) error) error {
	b.t.Helper()
	server, _ := loopback(b.t)
	return b.sessionOn(user, server, relay)
}

func (b *bed) sessionOn(user string, server net.Conn, relay func(c net.Conn) error) error {
	s, _ := mwtest.Session(b.t)
	s.Conn = server
	term := middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.User, s.AuthState, s.Command = user, middleware.AuthOK, middleware.CmdConnect
		for _, a := range s.Admissions {
			if err := a.Admit(ctx, s); err != nil {
				// The engine sends the refusal through the wrapped conn.
				s.Reply, s.ReplySent = middleware.ReplyNotAllowed, true
				if _, werr := s.Conn.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}); werr != nil {
					return fmt.Errorf("the refusal could not be sent: %w", werr)
				}
				return err
			}
		}
		s.ReplySent = true
		if relay == nil {
			return nil
		}
		return relay(s.Conn)
	})
	return b.mw.Wrap(term).ServeConn(context.Background(), s)
}

// download writes n bytes to c in relay-sized chunks, as the engine's
// relay does from the target, and returns the bytes written and the error
// that stopped it.
func download(c net.Conn, n int) (int, error) {
	buf := make([]byte, chunk)
	sent := 0
	for sent < n {
		k, err := c.Write(buf[:min(chunk, n-sent)])
		sent += k
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

func TestQuotaReachedMidTransfer(t *testing.T) {
	const limit = 1<<20 + 123
	store := &middleware.MemCounters{}
	b := newBed(t, store, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), map[string]any{"per_user": limit})
	server, client := loopback(t)
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, client)
		got <- n
	}()
	var sent int
	var relayErr error
	err := b.sessionOn("alice", server, func(c net.Conn) error {
		sent, relayErr = download(c, 8<<20)
		c.Close()
		return relayErr
	})
	if !errors.Is(err, quota.ErrQuotaReached) || !errors.Is(relayErr, quota.ErrQuotaReached) {
		t.Fatalf("relay ended with %v, want ErrQuotaReached", err)
	}
	received := <-got
	t.Logf("quota %d bytes: the relay wrote %d of 8 MiB, the client received %d", limit, sent, received)
	if received > limit || received < limit-chunk {
		t.Errorf("client received %d bytes, want within one buffer (%d) below the quota %d", received, chunk, limit)
	}
	if u := b.used("alice"); u != int64(sent) || u > limit {
		t.Errorf("used %d, want the %d bytes written, at most %d", u, sent, limit)
	}
	// A new request of the user is refused with reply 0x02.
	err = b.session("alice", nil)
	var re *middleware.ReplyError
	if !errors.As(err, &re) || re.Code != middleware.ReplyNotAllowed || !errors.Is(err, quota.ErrQuotaReached) {
		t.Fatalf("next request: %v, want reply 0x02 wrapping ErrQuotaReached", err)
	}
	if err := b.session("bob", nil); err != nil {
		t.Errorf("another user refused: %v", err)
	}
	if err := b.session("", nil); err != nil {
		t.Errorf("an anonymous session refused: %v", err)
	}
	if got := b.stat("quota_refused"); got != 1 {
		t.Errorf("quota_refused = %d, want 1", got)
	}
	if got := b.stat("quota_users_over"); got != 1 {
		t.Errorf("quota_users_over = %d, want 1", got)
	}
}

// Both directions count; the upload stops at the limit too, and the
// user's other open connection, idle, is closed when the limit is reached.
func TestQuotaBothDirectionsAndOpenConnections(t *testing.T) {
	const limit = 300 << 10
	b := newBed(t, &middleware.MemCounters{}, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), map[string]any{"per_user": limit})

	// An idle connection of alice, waiting for bytes from her client.
	idleServer, _ := loopback(t)
	idleDone := make(chan error, 1)
	idleStarted := make(chan struct{})
	go func() {
		idleDone <- b.sessionOn("alice", idleServer, func(c net.Conn) error {
			// One empty write resolves the account, as the relay's first bytes would.
			if _, err := c.Write(nil); err != nil {
				return err
			}
			close(idleStarted)
			_, err := c.Read(make([]byte, 10))
			return err
		})
	}()
	<-idleStarted

	// Upload 200 KiB: counted.
	server, client := loopback(t)
	go func(c net.Conn) { _, _ = c.Write(make([]byte, 200<<10)); c.Close() }(client)
	err := b.sessionOn("alice", server, func(c net.Conn) error {
		_, err := io.Copy(io.Discard, c)
		return err
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if u := b.used("alice"); u != 200<<10 {
		t.Fatalf("used %d after a 200 KiB upload, want %d", u, 200<<10)
	}
	// Upload 200 KiB more: cut at the limit.
	server, client = loopback(t)
	go func(c net.Conn) { _, _ = c.Write(make([]byte, 200<<10)) }(client)
	var read int64
	err = b.sessionOn("alice", server, func(c net.Conn) error {
		var err error
		read, err = io.Copy(io.Discard, c)
		return err
	})
	if !errors.Is(err, quota.ErrQuotaReached) {
		t.Fatalf("second upload ended with %v, want ErrQuotaReached", err)
	}
	if read != limit-200<<10 {
		t.Errorf("second upload relayed %d bytes, want exactly the %d left", read, limit-200<<10)
	}
	select {
	case err := <-idleDone:
		if err == nil {
			t.Error("the idle connection ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the user's idle connection was not closed at the limit")
	}
	if got := b.stat("quota_closed_at_limit"); got < 1 {
		t.Errorf("quota_closed_at_limit = %d, want at least 1", got)
	}
}

// Usage survives a restart (a new shared pool over the same store), and a
// new period starts from 0 and drops the old period's counters.
func TestQuotaRestartAndPeriodBoundary(t *testing.T) {
	store := &middleware.MemCounters{}
	cfg := map[string]any{"per_user": "1MiB", "period": "month", "time_zone": "Europe/Madrid"}
	// 23:30 UTC on 31 December is already January in Madrid: use 22:30.
	dec := time.Date(2026, 12, 31, 22, 30, 0, 0, time.UTC)
	b := newBed(t, store, dec, cfg)
	if err := b.session("alice", func(c net.Conn) error { _, err := download(c, 600<<10); return err }); err != nil {
		t.Fatal(err)
	}
	b.stop() // the server stops: counts saved

	b2 := newBed(t, store, dec.Add(time.Minute), cfg)
	if u := b2.used("alice"); u != 600<<10 {
		t.Fatalf("after a restart alice has used %d, want %d", u, 600<<10)
	}
	err := b2.session("alice", func(c net.Conn) error { _, err := download(c, 600<<10); return err })
	if !errors.Is(err, quota.ErrQuotaReached) {
		t.Fatalf("over the quota after a restart: %v, want ErrQuotaReached", err)
	}
	q := b2.mw.(middleware.QuotaKeeper).Quotas()
	if len(q) != 1 || q[0].User != "alice" || q[0].Used != 1<<20 || q[0].Period != "month:2026-12" ||
		!q[0].Resets.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, mustZone(t, "Europe/Madrid"))) {
		t.Fatalf("Quotas = %+v", q)
	}

	// Midnight in Madrid: a new month.
	b2.set(time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC))
	if err := b2.session("alice", nil); err != nil {
		t.Fatalf("new period: %v", err)
	}
	if u := b2.used("alice"); u != 0 {
		t.Errorf("used %d in the new period, want 0", u)
	}
	quota.Save(b2.p.Shared, "quota")
	if m, _ := store.Counters("quota/quota/month:2026-12/"); len(m) != 0 {
		t.Errorf("the ended period's counters are still stored: %v", m)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestQuotaReset(t *testing.T) {
	store := &middleware.MemCounters{}
	b := newBed(t, store, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), map[string]any{"per_user": "100KiB", "period": "day"})
	_ = b.session("alice", func(c net.Conn) error { _, err := download(c, 200<<10); return err })
	quota.Save(b.p.Shared, "quota")
	if err := b.session("alice", nil); err == nil {
		t.Fatal("not refused over the quota")
	}
	qk := b.mw.(middleware.QuotaKeeper)
	if found, err := qk.ResetQuota("alice"); !found || err != nil {
		t.Fatalf("ResetQuota = %v, %v", found, err)
	}
	if found, _ := qk.ResetQuota("nobody"); found {
		t.Error("ResetQuota(nobody) found a count")
	}
	if err := b.session("alice", nil); err != nil {
		t.Fatalf("refused after a reset: %v", err)
	}
	if m, _ := store.Counters("quota/"); m["quota/quota/day:2026-12-03/alice"] != 0 {
		t.Errorf("stored count after a reset: %v", m)
	}
	if q := qk.Quotas(); len(q) != 0 {
		t.Errorf("Quotas after a reset = %+v, want none", q)
	}
}

// failingStore fails while broken.
type failingStore struct {
	middleware.MemCounters
	mu     sync.Mutex
	broken bool
}

func (f *failingStore) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return errors.New("store unreachable")
	}
	return nil
}

func (f *failingStore) Add(key string, d int64) (int64, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.MemCounters.Add(key, d)
}

func (f *failingStore) Counters(prefix string) (map[string]int64, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.MemCounters.Counters(prefix)
}

// A store that fails loses nothing: the counts wait in memory and are
// saved whole when it answers again.
func TestQuotaStoreDown(t *testing.T) {
	store := &failingStore{}
	b := newBed(t, store, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), map[string]any{"per_user": "10MiB"})
	_ = b.session("alice", func(c net.Conn) error { _, err := download(c, 100<<10); return err })
	store.mu.Lock()
	store.broken = true
	store.mu.Unlock()
	_ = b.session("alice", func(c net.Conn) error { _, err := download(c, 50<<10); return err })
	quota.Save(b.p.Shared, "quota")
	if got := b.stat("quota_store_errors"); got != 1 {
		t.Errorf("quota_store_errors = %d, want 1", got)
	}
	if u := b.used("alice"); u != 150<<10 {
		t.Errorf("used %d while the store is down, want %d", u, 150<<10)
	}
	store.mu.Lock()
	store.broken = false
	store.mu.Unlock()
	quota.Save(b.p.Shared, "quota")
	if m, _ := store.MemCounters.Counters(""); m["quota/quota/month:2026-12/alice"] != 150<<10 {
		t.Errorf("stored %v, want alice's 150 KiB", m)
	}
}

// per_user 0 counts without limiting.
func TestQuotaCountOnly(t *testing.T) {
	b := newBed(t, nil, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), nil)
	for range 3 {
		if err := b.session("alice", func(c net.Conn) error { _, err := download(c, 100<<10); return err }); err != nil {
			t.Fatalf("a session with no limit: %v", err)
		}
	}
	if u := b.used("alice"); u != 300<<10 {
		t.Errorf("used %d, want %d", u, 300<<10)
	}
	if got := b.stat("quota_users_over"); got != 0 {
		t.Errorf("quota_users_over = %d without a limit", got)
	}
}

func TestQuotaSettingsAndStats(t *testing.T) {
	b := newBed(t, nil, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), map[string]any{"per_user": "1GiB", "period": "week"})
	got := map[string]string{}
	for _, s := range b.mw.(middleware.Tunable).Settings() {
		got[s.Key] = s.Value
	}
	if got["per_user"] != "1073741824" || got["period"] != "week" || got["time_zone"] != "UTC" {
		t.Errorf("Settings = %v", got)
	}
	var keys []string
	for _, s := range b.mw.(middleware.StatsSource).Stats() {
		if !strings.HasPrefix(s.Key, "quota_") {
			t.Errorf("STATS key %q is not prefixed with the stage's name", s.Key)
		}
		keys = append(keys, s.Key)
	}
	if len(keys) != 5 {
		t.Errorf("STATS keys %v", keys)
	}
}
