package auth

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/socks5d/socks5d/middleware"
)

// maxTracked bounds the addresses the guard remembers.
const maxTracked = 10000

// policy is the brute-force defence as a stage's configuration sets it.
// The guard's state outlives a rebuild of the chain; the policy is passed
// in by the stage in use, so a changed setting applies from the next
// failure on.
type policy struct {
	burst  int           // failures tolerated in a burst
	every  rate.Limit    // how fast the allowance refills
	window time.Duration // time to refill the whole allowance
	// workWindow is the time to refill the whole allowance of slow
	// password checks (burst+1 of them, refilled at every).
	workWindow time.Duration
	ban        time.Duration // first ban
	maxBan     time.Duration // cap of the doubling
	memory     time.Duration // a ban that starts within this of the previous one's end doubles it
}

// guard counts authentication failures per client address (an IPv4
// address, an IPv6 /64) and bans an address whose failures outrun its
// allowance. It lives in the shared pool, so it survives rebuilds, and it
// synchronises itself. It tracks at most maxTracked addresses (m.Max).
type guard struct {
	now  func() time.Time // the clock; tests replace it before use
	bans atomic.Int64     // bans issued since start-up

	mu sync.Mutex
	m  *middleware.Tracker[netip.Prefix, entry]
}

// entry is one tracked address group.
type entry struct {
	lim         *rate.Limiter // the failure allowance
	work        *rate.Limiter // the allowance of slow password checks
	last        time.Time     // last failure or slow check
	bannedUntil time.Time     // zero when never banned
	banLen      time.Duration // length of the latest ban
	expires     time.Time     // when the entry holds nothing worth keeping
}

func newGuard() *guard {
	expired := func(e *entry, now time.Time) bool { return !now.Before(e.expires) }
	lastFailure := func(e *entry, _ time.Time) (bool, time.Time) { return false, e.last }
	return &guard{now: time.Now, m: middleware.NewTracker[netip.Prefix](maxTracked, expired, lastFailure)}
}

// banned reports whether a is banned at this moment.
func (g *guard) banned(a netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.m.Get(middleware.ClientGroup(a), now)
	return e != nil && now.Before(e.bannedUntil)
}

// failure is the outcome of recording one failure.
type failure struct {
	banned bool          // a is banned after this failure
	newBan time.Duration // length of the ban this failure started, 0 if none
	until  time.Time     // end of the ban, when banned
}

// track returns the live entry of k, made if needed, following a setting
// changed since it was made, with its last activity set to now. Called
// with the lock held.
func (g *guard) track(k netip.Prefix, now time.Time, pol policy) *entry {
	e := g.m.Get(k, now)
	if e == nil {
		e = &entry{lim: rate.NewLimiter(pol.every, pol.burst), work: rate.NewLimiter(pol.every, pol.burst+1)}
		g.m.Add(k, e, now)
	} else {
		for _, l := range []struct {
			lim   *rate.Limiter
			burst int
		}{{e.lim, pol.burst}, {e.work, pol.burst + 1}} {
			if l.lim.Limit() != pol.every {
				l.lim.SetLimitAt(now, pol.every)
			}
			if l.lim.Burst() != l.burst {
				l.lim.SetBurstAt(now, l.burst)
			}
		}
	}
	e.last = now
	return e
}

// keep extends e's life to t when that is later than now planned.
func (e *entry) keep(t time.Time) {
	if t.After(e.expires) {
		e.expires = t
	}
}

// spend takes one slow password check (a bcrypt comparison) from the
// allowance of a's group and reports whether there was one. The allowance
// holds max_failures+1 checks and refills as fast as the failure
// allowance: as many as the ban lets a group fail, plus the check of the
// guess that starts the ban. Taken before the check, it also bounds
// checks running in parallel connections, which the failure count only
// sees once they end. A check whose password turns out right gives its
// share back with refund, so only failures use the allowance up: users
// behind one address logging in after a restart (no digest cached yet)
// are never refused for the work their right passwords cost.
func (g *guard) spend(a netip.Addr, pol policy) (refund func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.track(middleware.ClientGroup(a), now, pol)
	e.keep(now.Add(pol.workWindow))
	if !e.work.AllowN(now, 1) {
		return nil, false
	}
	work := e.work
	// A Reservation's Cancel restores nothing once its time has come, so
	// the share goes back as a negative event: the limiter adds the token
	// (its next refill caps the bucket at its burst again).
	return func() { work.AllowN(g.now(), -1) }, true
}

// fail records a failed authentication from a under policy pol. A failure
// that finds the allowance empty bans a for pol.ban, doubled for each ban
// that starts within pol.memory of the end of the previous one, up to
// pol.maxBan. A failure while a is already banned (one that was being
// checked when the ban began) starts no new ban.
func (g *guard) fail(a netip.Addr, pol policy) failure {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.track(middleware.ClientGroup(a), now, pol)
	var out failure
	switch {
	case now.Before(e.bannedUntil):
		out = failure{banned: true, until: e.bannedUntil}
	case e.lim.AllowN(now, 1):
	default:
		d := pol.ban
		if !e.bannedUntil.IsZero() && now.Sub(e.bannedUntil) <= pol.memory {
			d = max(pol.ban, min(2*e.banLen, pol.maxBan))
		}
		e.bannedUntil, e.banLen = now.Add(d), d
		g.bans.Add(1)
		out = failure{banned: true, newBan: d, until: e.bannedUntil}
	}
	// Keep the entry while it is banned, while its allowance refills and
	// while its last ban is remembered.
	e.keep(now.Add(pol.window))
	if !e.bannedUntil.IsZero() {
		e.keep(e.bannedUntil.Add(pol.memory))
	}
	return out
}

// bannedNow counts the address groups banned at this moment.
func (g *guard) bannedNow() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var n int64
	for _, e := range g.m.All() {
		if now.Before(e.bannedUntil) {
			n++
		}
	}
	return n
}

// len is the number of tracked address groups.
func (g *guard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m.Len()
}
