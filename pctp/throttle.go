package pctp

import (
	"net/netip"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultLoginDelay is the delay before checking a login from a source
// that has already failed failures times recently: nothing for the first
// three failures, then 250ms doubling up to 4s.
func DefaultLoginDelay(failures int) time.Duration {
	const (
		free  = 3
		first = 250 * time.Millisecond
		limit = 4 * time.Second
	)
	if failures < free {
		return 0
	}
	n := failures - free
	if n >= 5 { // 250ms << 5 > limit already; avoid overflowing the shift
		return limit
	}
	return min(first<<n, limit)
}

// Defaults for LoginLimits' zero fields.
const (
	DefaultSourceFailures = 10
	DefaultUserFailures   = 20
	DefaultLockout        = time.Minute
	DefaultMaxLockout     = 15 * time.Minute
)

// How PCTP groups login sources: an IPv4 /24 or an IPv6 /64 is one source,
// as whoever holds one address there usually holds its neighbours too.
const (
	sourceBits4 = 24
	sourceBits6 = 64
)

// loginSource is the source group of a client address.
func loginSource(a netip.Addr) netip.Prefix {
	return middleware.ClientNetwork(a, sourceBits4, sourceBits6)
}

// LoginLimits bound password guessing over PCTP, whatever the number of
// parallel sessions: each source (an IPv4 /24 or an IPv6 /64) and each user
// name (from any source) may fail a number of logins; the next PASS is
// refused without checking the password, for a lockout that doubles each
// time the same source or name is locked out again. A login in flight
// counts against the budget until it is answered, so parallel sessions
// cannot overrun it: a PASS that would waits for one in flight to end (a
// burst of right passwords is checked a few at a time, not refused). A
// source's failures are forgotten on its next
// successful login; a name's are not (the attacker may be elsewhere).
// Either is forgotten trackerTTL after its last failure or lockout.
type LoginLimits struct {
	// SourceFailures is how many failed logins a source may have before
	// it is locked out. Zero means DefaultSourceFailures.
	SourceFailures int
	// UserFailures is how many failed logins as one user name, from any
	// source, lock that name out. Zero means DefaultUserFailures.
	UserFailures int
	// Lockout is how long the first lockout lasts; each further one of
	// the same source or name lasts twice the previous. Zero means
	// DefaultLockout.
	Lockout time.Duration
	// MaxLockout caps the doubling. Zero means DefaultMaxLockout.
	MaxLockout time.Duration
}

func (l LoginLimits) withDefaults() LoginLimits {
	if l.SourceFailures <= 0 {
		l.SourceFailures = DefaultSourceFailures
	}
	if l.UserFailures <= 0 {
		l.UserFailures = DefaultUserFailures
	}
	if l.Lockout <= 0 {
		l.Lockout = DefaultLockout
	}
	if l.MaxLockout <= 0 {
		l.MaxLockout = DefaultMaxLockout
	}
	l.MaxLockout = max(l.MaxLockout, l.Lockout)
	return l
}

// Bounds of each budget's memory.
const (
	trackerMax = 4096
	trackerTTL = 15 * time.Minute
)

// budget counts the failed logins of one kind of key (a source group, a
// user name). It holds at most max keys; a key is forgotten ttl after its
// last failure or the end of its lockout.
type budget[K comparable] struct {
	limit       int
	first, most time.Duration
	ttl         time.Duration
	now         func() time.Time

	mu      sync.Mutex
	m       *middleware.Tracker[K, tally] // at most trackerMax keys (m.Max)
	changed chan struct{}                 // closed, and replaced, by every release
}

// tally is one key's account.
type tally struct {
	fails    int       // failures since the last lockout ended or reset
	inflight int       // logins being checked now
	lockouts int       // lockouts so far, for the doubling
	until    time.Time // locked out until then
	last     time.Time // last failure
}

func newBudget[K comparable](limit int, first, most time.Duration) *budget[K] {
	b := &budget[K]{
		limit: limit, first: first, most: most,
		ttl: trackerTTL, now: time.Now,
		changed: make(chan struct{}),
	}
	// A key locked out now or with a login in flight is evicted last.
	rank := func(t *tally, now time.Time) (bool, time.Time) {
		return t.inflight > 0 || now.Before(t.until), t.last
	}
	b.m = middleware.NewTracker[K](trackerMax, b.stale, rank)
	return b
}

// verdict is what acquire decides.
type verdict uint8

const (
	granted verdict = iota // the attempt may be checked
	locked                 // the key is locked out
	busy                   // attempts in flight use up the budget: wait
)

// stale reports whether t can be forgotten at now.
func (b *budget[K]) stale(t *tally, now time.Time) bool {
	latest := t.last
	if t.until.After(latest) {
		latest = t.until
	}
	return t.inflight == 0 && now.After(t.until) && now.Sub(latest) > b.ttl
}

// acquire reserves one login attempt for k and says granted; or, without
// reserving anything, locked when k is locked out, or busy when k's
// attempts in flight already use up what is left of its budget. When busy,
// the channel is closed at the next release of any key.
func (b *budget[K]) acquire(k K) (verdict, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	t := b.m.Get(k, now)
	if t == nil {
		t = &tally{}
		b.m.Add(k, t, now)
	}
	if now.Before(t.until) {
		return locked, nil
	}
	if t.fails >= b.limit {
		// The lockout is over: one more try, and the next failure locks
		// the key out again, for longer.
		t.fails = b.limit - 1
	}
	if t.fails+t.inflight >= b.limit {
		return busy, b.changed
	}
	t.inflight++
	return granted, nil
}

// release ends an attempt acquire allowed. A failure is counted; when it
// uses up the budget, k is locked out and release returns how long for
// (zero otherwise). A success resets k's failures when reset is set.
func (b *budget[K]) release(k K, failed, reset bool) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	now := b.now()
	t := b.m.Get(k, now) // never stale: this attempt is in flight
	if t == nil {        // evicted meanwhile (the map was full of other keys)
		if !failed {
			return 0
		}
		t = &tally{inflight: 1}
		b.m.Add(k, t, now)
	}
	t.inflight--
	switch {
	case !failed && reset:
		t.fails = 0
	case failed:
		t.fails++
		t.last = now
		if t.fails >= b.limit {
			d := b.first << min(t.lockouts, 30)
			if d <= 0 || d > b.most {
				d = b.most
			}
			t.until = now.Add(d)
			t.lockouts++
			return d
		}
	}
	return 0
}

// failures returns k's failures that count now.
func (b *budget[K]) failures(k K) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.m.Get(k, b.now()); t != nil {
		return t.fails
	}
	return 0
}

// len is the number of keys held.
func (b *budget[K]) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.Len()
}
