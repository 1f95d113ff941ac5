package ratelimit

import (
	"context"
	"io"
	"testing"

	"golang.org/x/time/rate"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// serveAs runs one session for user through mw, reading one byte after the
// user is set so that the user's limiters are resolved.
func serveAs(t *testing.T, mw middleware.Middleware, user string) {
	t.Helper()
	s, client := mwtest.Session(t)
	go func() { _, _ = client.Write([]byte{1}) }()
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.User = user
		if _, err := io.ReadFull(s.Conn, make([]byte, 1)); err != nil {
			t.Error(err)
		}
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
}

func userPair(t *testing.T, p middleware.Params, name string) *pair {
	t.Helper()
	u := middleware.Get(p.Shared, p.Name, newUsers)
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[name]
}

func checkLimits(t *testing.T, pr *pair, limit rate.Limit, burst int) {
	t.Helper()
	for _, l := range []*rate.Limiter{pr.read, pr.write} {
		if l.Limit() != limit || l.Burst() != burst {
			t.Errorf("limiter %v/%d, want %v/%d", l.Limit(), l.Burst(), limit, burst)
		}
	}
}

func TestRebuildUpdatesUserLimiters(t *testing.T) {
	p := mwtest.Params("ratelimit", map[string]any{"per_user": "1MiB"})
	first := mwtest.New(t, Type, p)
	serveAs(t, first, "alice")
	alice := userPair(t, p, "alice")
	if alice == nil {
		t.Fatal("no limiter for alice")
	}
	checkLimits(t, alice, 1<<20, DefaultBurst)
	if userPair(t, p, "") != nil {
		t.Error("limiter for the anonymous user")
	}

	// A change that built a stage but was never installed changes nothing.
	p.Config = map[string]any{"per_user": "5MiB"}
	if _, err := mwtest.Build(t, Type, p); err != nil {
		t.Fatal(err)
	}
	serveAs(t, first, "alice")
	checkLimits(t, alice, 1<<20, DefaultBurst)

	// The installed rebuild updates the same limiters when it is activated.
	p.Config = map[string]any{"per_user": "2MiB", "burst": "32KiB"}
	second := mwtest.New(t, Type, p)
	serveAs(t, second, "bob")
	if got := userPair(t, p, "alice"); got != alice {
		t.Fatal("alice's limiter was replaced")
	}
	checkLimits(t, alice, 2<<20, 32<<10)
	checkLimits(t, userPair(t, p, "bob"), 2<<20, 32<<10)

	// A session still running on the old chain does not bring back its settings,
	// and a user first seen there gets the newest ones.
	serveAs(t, first, "carol")
	checkLimits(t, alice, 2<<20, 32<<10)
	checkLimits(t, userPair(t, p, "carol"), 2<<20, 32<<10)

	// Lifting the limit frees running connections too.
	p.Config = map[string]any{"per_user": 0}
	third := mwtest.New(t, Type, p)
	serveAs(t, third, "alice")
	checkLimits(t, alice, rate.Inf, DefaultBurst)
}

func TestWaitNSplitsAtBurst(t *testing.T) {
	l := rate.NewLimiter(rate.Limit(1<<30), 4096)
	// 3 bursts and a bit: one WaitN of this size would fail.
	if err := waitN(context.Background(), l, 3*4096+10); err != nil {
		t.Fatalf("waitN: %v", err)
	}
	if err := l.WaitN(context.Background(), 3*4096+10); err == nil {
		t.Fatal("WaitN above the burst succeeded; the test proves nothing")
	}
}
