package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// clock is a manual clock for the guard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testPolicy: 3 failures per minute, bans of 1m doubling up to 5m,
// remembered for 1h.
func testPolicy() policy {
	c := DefaultConfig()
	c.MaxFailures = 3
	c.MaxBan = middleware.Duration(5 * time.Minute)
	c.BanMemory = middleware.Duration(time.Hour)
	return c.policy()
}

func testGuard(t *testing.T) (*guard, *clock) {
	t.Helper()
	g := newGuard()
	c := newClock()
	g.now = c.now
	return g, c
}

var (
	ipA = netip.MustParseAddr("192.0.2.1")
	ipB = netip.MustParseAddr("192.0.2.2")
)

// failUntilBanned fails from a until a failure bans it and returns the
// failures it took and the ban that was started.
func failUntilBanned(t *testing.T, g *guard, a netip.Addr, pol policy) (int, failure) {
	t.Helper()
	for n := 1; n <= 1000; n++ {
		if f := g.fail(a, pol); f.banned {
			return n, f
		}
	}
	t.Fatalf("%s not banned after 1000 failures", a)
	return 0, failure{}
}

func TestGuardKey(t *testing.T) {
	tests := []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::7"},
	}
	for _, tt := range tests {
		if ka, kb := middleware.ClientGroup(netip.MustParseAddr(tt.a)), middleware.ClientGroup(netip.MustParseAddr(tt.b)); ka != kb {
			t.Errorf("ClientGroup(%s) = %s, middleware.ClientGroup(%s) = %s; want the same group", tt.a, ka, tt.b, kb)
		}
	}
	differ := []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"::ffff:192.0.2.1", "::192.0.2.1"},
	}
	for _, tt := range differ {
		if ka, kb := middleware.ClientGroup(netip.MustParseAddr(tt.a)), middleware.ClientGroup(netip.MustParseAddr(tt.b)); ka == kb {
			t.Errorf("ClientGroup(%s) = ClientGroup(%s) = %s; want different groups", tt.a, tt.b, ka)
		}
	}
	if k := middleware.ClientGroup(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); k.String() != "2001:db8:1:2::/64" {
		t.Errorf("ClientGroup = %s, want 2001:db8:1:2::/64", k)
	}
}

func TestGuardBansAfterMaxFailures(t *testing.T) {
	g, _ := testGuard(t)
	pol := testPolicy()
	for i := 1; i <= pol.burst; i++ {
		if f := g.fail(ipA, pol); f.banned {
			t.Fatalf("banned after %d failures, want %d tolerated", i, pol.burst)
		}
		if g.banned(ipA) {
			t.Fatalf("banned() after %d failures", i)
		}
	}
	f := g.fail(ipA, pol)
	if !f.banned || f.newBan != time.Minute {
		t.Fatalf("failure %d = %+v, want a new 1m ban", pol.burst+1, f)
	}
	if !g.banned(ipA) {
		t.Error("banned() = false after the ban")
	}
	if got := g.bans.Load(); got != 1 {
		t.Errorf("bans = %d, want 1", got)
	}
	if got := g.bannedNow(); got != 1 {
		t.Errorf("bannedNow = %d, want 1", got)
	}
	// More failures while banned start no new ban.
	for range 3 {
		if f := g.fail(ipA, pol); !f.banned || f.newBan != 0 {
			t.Errorf("failure while banned = %+v, want banned, no new ban", f)
		}
	}
	if got := g.bans.Load(); got != 1 {
		t.Errorf("bans = %d after failures while banned, want 1", got)
	}
}

func TestGuardOtherAddressUnaffected(t *testing.T) {
	g, _ := testGuard(t)
	pol := testPolicy()
	failUntilBanned(t, g, ipA, pol)
	if g.banned(ipB) {
		t.Error("a neighbouring IPv4 address is banned too")
	}
	if f := g.fail(ipB, pol); f.banned {
		t.Error("first failure of another address banned it")
	}
	if !g.banned(ipA) {
		t.Error("ban lifted by another address's failure")
	}
}

func TestGuardIPv6Grouping(t *testing.T) {
	g, _ := testGuard(t)
	pol := testPolicy()
	// Failures spread over one /64 count together.
	for i := range pol.burst {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		if f := g.fail(a, pol); f.banned {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	if f := g.fail(netip.MustParseAddr("2001:db8:1:2:aaaa::1"), pol); !f.banned {
		t.Fatal("the /64 is not banned after its failures")
	}
	if !g.banned(netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff")) {
		t.Error("another address of the banned /64 is not banned")
	}
	if g.banned(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("the next /64 is banned too")
	}
	if got := g.len(); got != 1 {
		t.Errorf("tracked = %d, want one group", got)
	}
}

func TestGuardBanExpires(t *testing.T) {
	g, c := testGuard(t)
	pol := testPolicy()
	_, f := failUntilBanned(t, g, ipA, pol)
	c.advance(f.newBan - time.Nanosecond)
	if !g.banned(ipA) {
		t.Fatal("ban over early")
	}
	c.advance(time.Nanosecond)
	if g.banned(ipA) {
		t.Fatal("still banned when the ban ended")
	}
	if got := g.bannedNow(); got != 0 {
		t.Errorf("bannedNow = %d after the ban, want 0", got)
	}
	// The allowance refilled during the ban (ban >= window).
	if n, _ := failUntilBanned(t, g, ipA, pol); n != pol.burst+1 {
		t.Errorf("after the ban, banned again after %d failures, want %d", n, pol.burst+1)
	}
}

func TestGuardRefill(t *testing.T) {
	g, c := testGuard(t)
	pol := testPolicy() // 3 per minute: one every 20s
	// One failure every 20s (and a little) never exhausts the allowance.
	for i := range 20 {
		if f := g.fail(ipA, pol); f.banned {
			t.Fatalf("banned at failure %d, paced at the refill rate", i+1)
		}
		c.advance(20*time.Second + time.Millisecond)
	}
	// Twice that rate does.
	banned := false
	for range 20 {
		if g.fail(ipA, pol).banned {
			banned = true
			break
		}
		c.advance(10 * time.Second)
	}
	if !banned {
		t.Error("not banned at twice the refill rate")
	}
}

func TestGuardBackoff(t *testing.T) {
	g, c := testGuard(t)
	pol := testPolicy() // 1m doubling to 5m, memory 1h
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		_, f := failUntilBanned(t, g, ipA, pol)
		if f.newBan != w {
			t.Fatalf("ban %d lasts %s, want %s", i+1, f.newBan, w)
		}
		c.advance(f.newBan)
		if g.banned(ipA) {
			t.Fatalf("ban %d not over after %s", i+1, f.newBan)
		}
		c.advance(30 * time.Minute) // within ban_memory: the next ban doubles
	}
	if got := g.bans.Load(); got != int64(len(want)) {
		t.Errorf("bans = %d, want %d", got, len(want))
	}

	// Past ban_memory the address starts again from the first ban.
	c.advance(pol.memory)
	if _, f := failUntilBanned(t, g, ipA, pol); f.newBan != time.Minute {
		t.Errorf("ban after ban_memory lasts %s, want 1m", f.newBan)
	}
}

func TestGuardNoMemory(t *testing.T) {
	g, c := testGuard(t)
	pol := testPolicy()
	pol.memory = 0
	for i := range 3 {
		_, f := failUntilBanned(t, g, ipA, pol)
		if f.newBan != time.Minute {
			t.Fatalf("ban %d lasts %s with ban_memory 0, want 1m", i+1, f.newBan)
		}
		c.advance(f.newBan + time.Second)
	}
}

func TestGuardEntriesExpire(t *testing.T) {
	g, c := testGuard(t)
	pol := testPolicy()
	g.fail(ipA, pol)
	c.advance(pol.window)
	if g.banned(ipA) {
		t.Fatal("banned after one failure")
	}
	if got := g.len(); got != 0 {
		t.Errorf("tracked = %d once the allowance refilled, want 0", got)
	}

	// A banned entry lives until its ban is forgotten.
	_, f := failUntilBanned(t, g, ipB, pol)
	c.advance(f.newBan + pol.memory - time.Second)
	g.banned(ipB)
	if got := g.len(); got != 1 {
		t.Errorf("tracked = %d within ban_memory, want 1", got)
	}
	c.advance(time.Second)
	g.banned(ipB)
	if got := g.len(); got != 0 {
		t.Errorf("tracked = %d after ban_memory, want 0", got)
	}
}

func TestGuardBounded(t *testing.T) {
	g, c := testGuard(t)
	g.m.Max = 4
	pol := testPolicy()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }

	// Full of live entries: each new address evicts the oldest one.
	for i := range 10 {
		g.fail(addr(i), pol)
		c.advance(time.Second)
		if got := g.len(); got > g.m.Max {
			t.Fatalf("tracked = %d, above the bound %d", got, g.m.Max)
		}
	}
	if got := g.len(); got != g.m.Max {
		t.Fatalf("tracked = %d, want %d", got, g.m.Max)
	}
	g.mu.Lock()
	for i := range 10 {
		ok := g.m.Get(middleware.ClientGroup(addr(i)), g.now()) != nil
		if want := i >= 6; ok != want {
			t.Errorf("address %d tracked = %v, want %v (the newest kept)", i, ok, want)
		}
	}
	g.mu.Unlock()

	// Expired entries go first, and all of them: a banned entry is kept
	// while its ban lasts.
	_, f := failUntilBanned(t, g, addr(9), pol)
	// Now T+10s; 6, 7 and 8 failed last at T+6s..T+8s and expire a window
	// later; 9 is banned until T+70s.
	c.advance(59 * time.Second)
	if !f.banned || !g.banned(addr(9)) {
		t.Fatal("addr 9 not banned")
	}
	g.fail(addr(20), pol)
	if got := g.len(); got != 2 {
		t.Errorf("tracked = %d after evicting expired entries, want 2", got)
	}
	if !g.banned(addr(9)) {
		t.Error("a live ban was evicted while expired entries were there")
	}
}

func TestGuardFollowsPolicyChange(t *testing.T) {
	g, _ := testGuard(t)
	pol := testPolicy()
	g.fail(ipA, pol)
	// Lowered to one failure: the tracked address keeps at most that.
	pol.burst, pol.every = 1, pol.every/3
	if n, _ := failUntilBanned(t, g, ipA, pol); n > 2 {
		t.Errorf("banned after %d more failures, want at most 2 with max_failures lowered to 1", n)
	}
}

func TestGuardConcurrent(t *testing.T) {
	g, _ := testGuard(t)
	g.m.Max = 50
	pol := testPolicy()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := netip.AddrFrom4([4]byte{203, 0, 113, byte((w*200 + i) % 100)})
				g.fail(a, pol)
				g.banned(a)
				if i%50 == 0 {
					g.bannedNow()
				}
			}
		})
	}
	wg.Wait()
	if got := g.len(); got > g.m.Max {
		t.Errorf("tracked = %d, above the bound %d", got, g.m.Max)
	}
	if g.bans.Load() == 0 {
		t.Error("no ban issued")
	}
}

// TestStageBanExpires drives the stage with the guard's clock injected:
// a ban ends on time, the next one doubles.
func TestStageBanExpires(t *testing.T) {
	p := mwtest.Params("auth", map[string]any{"max_failures": 1, "ban": "1m", "max_ban": "3m"})
	p.Users = mwtest.Users{"alice": {Password: "wonderland", Role: middleware.RoleBasic}}
	mw := mwtest.New(t, Type, p)
	c := newClock()
	mw.(*stage).authn.guard.now = c.now

	authn := func() middleware.Authenticator {
		s, _ := mwtest.Session(t)
		s.Client = netip.AddrPortFrom(ipA, 1)
		if err := mwtest.Serve(context.Background(), mw, &mwtest.Terminal{}, s); err != nil {
			t.Fatal(err)
		}
		return s.Auth
	}
	ctx := context.Background()
	for i, ban := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
		for range 2 {
			if _, err := authn().Authenticate(ctx, "alice", "guess"); err == nil {
				t.Fatal("wrong password accepted")
			}
		}
		c.advance(ban - time.Second)
		if _, err := authn().Authenticate(ctx, "alice", "wonderland"); !errors.Is(err, ErrBanned) {
			t.Fatalf("ban %d, %s in: err = %v, want ErrBanned", i+1, ban-time.Second, err)
		}
		c.advance(time.Second)
		if _, err := authn().Authenticate(ctx, "alice", "wonderland"); err != nil {
			t.Fatalf("ban %d over after %s: %v", i+1, ban, err)
		}
	}
	if got := mw.(*stage).authn.guard.bans.Load(); got != 3 {
		t.Errorf("bans = %d, want 3", got)
	}
}
