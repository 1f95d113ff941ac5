package quota

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// usage is the quota stage's state that outlives a rebuild of the chain:
// the bytes each user moved in the current period. Each user's count is
// the store's total at the last save (base) plus what this instance moved
// since (pending); a background loop adds pending to the store every
// save_interval, and Close saves once more. It lives in the shared pool
// and synchronises itself.
type usage struct {
	now    func() time.Time // the clock; tests replace it before use
	store  middleware.CounterStore
	log    hclog.Logger
	prefix string // of the counter keys: "quota/<stage name>/"

	// flushMu serialises saves, loads and resets (each may wait on the
	// store); mu guards the fields below it and is never held across a
	// store call.
	flushMu sync.Mutex
	mu      sync.Mutex
	id      string // the current period's id
	start   time.Time
	next    time.Time // zero for total
	loaded  bool      // the period's counts were read from the store
	users   map[string]*account
	stale   []string // ids of ended periods whose counters are still to delete
	// fast lets roll see without the lock that nothing changed.
	fast atomic.Pointer[fastPeriod]
	gen  atomic.Int64 // bumped at each new period: conns re-resolve their account

	refused     atomic.Int64 // requests refused over quota
	closed      atomic.Int64 // connections closed at the limit
	storeErrors atomic.Int64 // failed reads or writes of the store
	lastLog     atomic.Int64 // unix ns of the latest store error line

	stop     chan struct{}
	done     chan struct{}
	interval atomic.Int64 // save interval in ns, the latest stage's
	started  sync.Once
	closing  sync.Once
}

// account is one user's count in one period, with the user's open
// connections (closed when the quota is reached).
type account struct {
	user    string
	base    atomic.Int64 // the store's total at the last save or load
	pending atomic.Int64 // moved here since, not yet saved

	mu      sync.Mutex
	conns   map[*conn]struct{}
	reached bool // logged once per period
}

func (a *account) used() int64 { return a.base.Load() + a.pending.Load() }

// newUsage returns the state of the stage name; without a store (a
// server that keeps none) the counts live in memory.
func newUsage(store middleware.CounterStore, log hclog.Logger, name string) *usage {
	if store == nil {
		store = &middleware.MemCounters{}
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &usage{
		now:    time.Now,
		store:  store,
		log:    log,
		prefix: "quota/" + name + "/",
		users:  map[string]*account{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// key is the counter key of user in period id.
func (u *usage) key(id, user string) string { return u.prefix + id + "/" + user }

// roll starts a new period when the clock has left the current one (or
// the period setting changed). Without a change it costs a clock read
// and an atomic load: it runs on every relayed chunk.
func (u *usage) roll(p period) {
	now := u.now()
	if f := u.fast.Load(); f != nil && f.p.same(p) && (f.until == 0 || now.UnixNano() < f.until) {
		return
	}
	start, next, id := p.bounds(now)
	var until int64
	if !next.IsZero() {
		until = next.UnixNano()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fast.Store(&fastPeriod{p: p, until: until})
	if id == u.id {
		return
	}
	if u.id != "" {
		u.stale = append(u.stale, u.id)
		u.log.Info("quota period ended", "period", u.id, "next", id)
	}
	u.id, u.start, u.next, u.loaded = id, start, next, false
	u.users = map[string]*account{}
	u.gen.Add(1)
}

// fastPeriod is what roll checks without the lock: the period setting it
// last saw and when the current period ends (0: never).
type fastPeriod struct {
	p     period
	until int64
}

// account returns user's account in the current period, creating it.
func (u *usage) account(user string) (*account, int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	a, ok := u.users[user]
	if !ok {
		a = &account{user: user, conns: map[*conn]struct{}{}}
		u.users[user] = a
	}
	return a, u.gen.Load()
}

// ensureLoaded reads the period's counts from the store once. A store
// that cannot be read is counted and logged; the counts go on in memory
// and the read is tried again at the next save.
func (u *usage) ensureLoaded() {
	u.mu.Lock()
	loaded := u.loaded
	u.mu.Unlock()
	if loaded {
		return
	}
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.loadLocked()
}

// loadLocked reads the current period's counters. The caller holds
// flushMu.
func (u *usage) loadLocked() bool {
	u.mu.Lock()
	id, loaded := u.id, u.loaded
	u.mu.Unlock()
	if loaded {
		return true
	}
	prefix := u.prefix + id + "/"
	m, err := u.store.Counters(prefix)
	if err != nil {
		u.storeFailed(fmt.Errorf("%w: reading %s*: %w", ErrStore, prefix, err))
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.id != id { // a new period began meanwhile: load that one next time
		return false
	}
	for k, v := range m {
		user := strings.TrimPrefix(k, prefix)
		a, ok := u.users[user]
		if !ok {
			a = &account{user: user, conns: map[*conn]struct{}{}}
			u.users[user] = a
		}
		a.base.Store(v)
	}
	u.loaded = true
	return true
}

// flush adds every pending count to the store and deletes the counters
// of ended periods. What fails stays pending (or stale) for the next
// flush: nothing is lost while the process lives.
func (u *usage) flush() {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	if !u.loadLocked() {
		return
	}
	u.mu.Lock()
	id := u.id
	accounts := slices.Collect(maps.Values(u.users))
	stale := slices.Clone(u.stale)
	u.mu.Unlock()
	for _, a := range accounts {
		d := a.pending.Load()
		if d == 0 {
			continue
		}
		// Move d from pending to base first, so used() never misses it.
		a.base.Add(d)
		a.pending.Add(-d)
		total, err := u.store.Add(u.key(id, a.user), d)
		if err != nil {
			a.pending.Add(d)
			a.base.Add(-d)
			u.storeFailed(fmt.Errorf("%w: saving %s: %w", ErrStore, u.key(id, a.user), err))
			return
		}
		a.base.Store(total) // the store's total: other instances' bytes too
	}
	for _, old := range stale {
		if err := u.store.Delete(u.prefix + old + "/"); err != nil {
			u.storeFailed(fmt.Errorf("%w: deleting %s*: %w", ErrStore, u.prefix+old+"/", err))
			return
		}
		u.mu.Lock()
		u.stale = slices.DeleteFunc(u.stale, func(s string) bool { return s == old })
		u.mu.Unlock()
	}
}

// storeFailed counts a store error and logs it, at most once a minute.
func (u *usage) storeFailed(err error) {
	u.storeErrors.Add(1)
	now := time.Now().UnixNano()
	last := u.lastLog.Load()
	if last != 0 && now-last < int64(time.Minute) {
		return
	}
	if u.lastLog.CompareAndSwap(last, now) {
		u.log.Error("quota counts not saved", "error", err.Error())
	}
}

// reset sets user's count in the current period to 0, in the store too.
// It reports false when the user has no count.
func (u *usage) reset(user string) (bool, error) {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.loadLocked()
	u.mu.Lock()
	a, ok := u.users[user]
	id := u.id
	u.mu.Unlock()
	if !ok {
		return false, nil
	}
	key := u.key(id, user)
	stored, err := u.store.Add(key, 0)
	if err == nil && stored != 0 {
		_, err = u.store.Add(key, -stored)
	}
	if err != nil {
		return true, fmt.Errorf("%w: resetting %s: %w", ErrStore, key, err)
	}
	a.base.Store(0)
	a.pending.Store(0)
	a.mu.Lock()
	a.reached = false
	a.mu.Unlock()
	return true, nil
}

// list returns the accounts of the current period, by user.
func (u *usage) list() (accounts []*account, start, next time.Time, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	accounts = slices.Collect(maps.Values(u.users))
	slices.SortFunc(accounts, func(a, b *account) int { return strings.Compare(a.user, b.user) })
	return accounts, u.start, u.next, u.id
}

// run saves every interval until Close.
func (u *usage) run() {
	defer close(u.done)
	for {
		t := time.NewTimer(time.Duration(u.interval.Load()))
		select {
		case <-u.stop:
			t.Stop()
			return
		case <-t.C:
			u.flush()
		}
	}
}

// startSaving starts the save loop once.
func (u *usage) startSaving(interval time.Duration) {
	u.interval.Store(int64(interval))
	u.started.Do(func() { go u.run() })
}

// Close stops the save loop and saves once more (the shared pool calls
// it when the server stops).
func (u *usage) Close() error {
	u.closing.Do(func() {
		close(u.stop)
		u.started.Do(func() { close(u.done) }) // never started: nothing to wait for
		<-u.done
		u.flush()
	})
	return nil
}
