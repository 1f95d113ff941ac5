package pctp

import (
	"net/netip"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultLoginDelay is the delay before checking a login from an address
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

// failureTracker counts failed logins per client address (IPv4 address, or
// IPv6 /64), shared by all of that address's sessions. It holds at most max
// addresses; an entry is forgotten ttl after its last failure.
type failureTracker struct {
	mu  sync.Mutex
	m   map[netip.Prefix]*failures
	max int
	ttl time.Duration
	now func() time.Time
}

type failures struct {
	n    int
	last time.Time
}

const (
	trackerMax = 4096
	trackerTTL = 15 * time.Minute
)

func newFailureTracker(max int, ttl time.Duration) *failureTracker {
	return &failureTracker{m: map[netip.Prefix]*failures{}, max: max, ttl: ttl, now: time.Now}
}

// count returns the recent failures from a.
func (t *failureTracker) count(a netip.Addr) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.m[middleware.ClientGroup(a)]
	if !ok {
		return 0
	}
	if t.now().Sub(f.last) > t.ttl {
		delete(t.m, middleware.ClientGroup(a))
		return 0
	}
	return f.n
}

// fail records a failure from a.
func (t *failureTracker) fail(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k := middleware.ClientGroup(a)
	f, ok := t.m[k]
	if ok && now.Sub(f.last) > t.ttl {
		f.n = 0
	}
	if !ok {
		if len(t.m) >= t.max {
			t.evict(now)
		}
		f = &failures{}
		t.m[k] = f
	}
	f.n++
	f.last = now
}

// reset forgets a's failures (after a successful login).
func (t *failureTracker) reset(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, middleware.ClientGroup(a))
}

// evict makes room: it drops expired entries and, if none had expired, the
// one that failed longest ago. Called with the lock held, only when full.
func (t *failureTracker) evict(now time.Time) {
	var oldest netip.Prefix
	var oldestAt time.Time
	dropped := false
	for k, f := range t.m {
		if now.Sub(f.last) > t.ttl {
			delete(t.m, k)
			dropped = true
			continue
		}
		if oldestAt.IsZero() || f.last.Before(oldestAt) {
			oldest, oldestAt = k, f.last
		}
	}
	if !dropped && !oldestAt.IsZero() {
		delete(t.m, oldest)
	}
}

// len is the number of tracked addresses.
func (t *failureTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
