package metrics

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/socks5d/socks5d/middleware"
)

// histogram counts observations in fixed buckets. It is safe for
// concurrent use and takes no lock: an observation is two atomic adds.
// The count is the sum of the buckets, so a reader always sees a count
// that agrees with the buckets it read.
type histogram struct {
	bounds    []time.Duration // upper bounds (le), strictly ascending; immutable
	counts    []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumMicros atomic.Int64    // sum of the observations, in microseconds
}

func newHistogram(bounds []time.Duration) *histogram {
	return &histogram{bounds: slices.Clone(bounds), counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe counts d in the first bucket whose bound is at least d.
func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i, _ := slices.BinarySearch(h.bounds, d)
	h.counts[i].Add(1)
	h.sumMicros.Add(d.Microseconds())
}

// histSnapshot is a histogram read once.
type histSnapshot struct {
	bounds []time.Duration
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	count  uint64
	sum    time.Duration
}

func (h *histogram) snapshot() histSnapshot {
	hs := histSnapshot{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		hs.counts[i] = h.counts[i].Load()
		hs.count += hs.counts[i]
	}
	hs.sum = time.Duration(h.sumMicros.Load()) * time.Microsecond
	return hs
}

// quantile estimates the q-quantile (0 < q <= 1) as Prometheus's
// histogram_quantile does: it finds the bucket holding the rank and
// interpolates linearly inside it, the first bucket starting at 0. A rank
// in the +Inf bucket gives the highest finite bound. No observation gives 0.
func (hs histSnapshot) quantile(q float64) time.Duration {
	if hs.count == 0 || len(hs.bounds) == 0 {
		return 0
	}
	rank := q * float64(hs.count)
	var cum uint64
	for i, n := range hs.counts {
		if n == 0 || float64(cum+n) < rank {
			cum += n
			continue
		}
		if i == len(hs.bounds) {
			break
		}
		var lower time.Duration
		if i > 0 {
			lower = hs.bounds[i-1]
		}
		frac := (rank - float64(cum)) / float64(n)
		return lower + time.Duration(frac*float64(hs.bounds[i]-lower))
	}
	return hs.bounds[len(hs.bounds)-1]
}

// cumulative returns the finite buckets as Prometheus wants them: upper
// bound in seconds → observations at or below it.
func (hs histSnapshot) cumulative() map[float64]uint64 {
	m := make(map[float64]uint64, len(hs.bounds))
	var cum uint64
	for i, b := range hs.bounds {
		cum += hs.counts[i]
		m[b.Seconds()] = cum
	}
	return m
}

// userEntry is the numbers of one user, or of the users beyond the cap.
// Every field is an atomic: connections update them as they end while
// STATS and scrapes read them.
type userEntry struct {
	label    string // the user name as a valid UTF-8 label value
	conns    atomic.Int64
	failures atomic.Int64
	up, down atomic.Int64
	lastSeen atomic.Int64 // unix seconds
}

// seen moves lastSeen forward to unix, never back.
func (e *userEntry) seen(unix int64) {
	for {
		old := e.lastSeen.Load()
		if old >= unix || e.lastSeen.CompareAndSwap(old, unix) {
			return
		}
	}
}

// users is the per-user numbers, keyed by label. The map only grows, up to
// the cap in force when a user first shows up; users who find it full are
// counted in other, under OtherUser.
type users struct {
	mu    sync.RWMutex
	m     map[string]*userEntry
	other userEntry
}

// labelOf returns the key and label value of a user name: the name itself
// when it is valid UTF-8 (as Prometheus requires of label values), else
// the name quoted with its invalid bytes escaped as \xNN.
func labelOf(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	return strconv.Quote(name)
}

// get returns the entry of user name, creating it while fewer than limit
// users are tracked. A lookup takes a read lock; only a user's first
// connection takes the write lock.
func (u *users) get(name string, limit int) *userEntry {
	key := labelOf(name)
	if key == OtherUser {
		return &u.other
	}
	u.mu.RLock()
	e, full := u.m[key], len(u.m) >= limit
	u.mu.RUnlock()
	if e != nil {
		return e
	}
	if full {
		return &u.other
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e = u.m[key]; e != nil {
		return e
	}
	if len(u.m) >= limit {
		return &u.other
	}
	e = &userEntry{label: key}
	u.m[key] = e
	return e
}

// lookup returns the entry of user name without creating it; ok is false
// for a user with no numbers. OtherUser names the users beyond the cap.
func (u *users) lookup(name string) (*userEntry, bool) {
	key := labelOf(name)
	if key == OtherUser {
		return &u.other, u.other.conns.Load() > 0
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	e, ok := u.m[key]
	return e, ok
}

// tracked returns how many users are tracked one by one.
func (u *users) tracked() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.m)
}

// entries returns every entry, other last when it has numbers.
func (u *users) entries() []*userEntry {
	u.mu.RLock()
	out := make([]*userEntry, 0, len(u.m)+1)
	for _, e := range u.m {
		out = append(out, e)
	}
	u.mu.RUnlock()
	if u.other.conns.Load() > 0 {
		out = append(out, &u.other)
	}
	return out
}

// state is what outlives a rebuild of the chain, kept in the shared pool
// under the stage's name. The tally counts sessions, reply codes and bytes
// (open sessions included); the rest are atomics or guarded by their own
// mutex.
type state struct {
	tally      *middleware.Tally
	authFailed atomic.Int64
	duration   *histogram

	latMu   sync.Mutex
	latency map[string]*histogram // by bucket layout; see latencyHistogram

	users users
}

func newState() *state {
	return &state{
		tally:    middleware.NewTally(),
		duration: newHistogram(durationBuckets),
		latency:  make(map[string]*histogram),
		users:    users{m: make(map[string]*userEntry), other: userEntry{label: OtherUser}},
	}
}

// latencyHistogram returns the connect-latency histogram of a bucket
// layout. Rebuilds with the same layout share one; a new layout starts a
// new one, as Prometheus cannot mix bucket layouts in one series.
func (c *state) latencyHistogram(bounds []time.Duration) *histogram {
	var b strings.Builder
	for _, d := range bounds {
		b.WriteString(strconv.FormatInt(int64(d), 10))
		b.WriteByte(',')
	}
	key := b.String()
	c.latMu.Lock()
	defer c.latMu.Unlock()
	h, ok := c.latency[key]
	if !ok {
		h = newHistogram(bounds)
		c.latency[key] = h
	}
	return h
}
