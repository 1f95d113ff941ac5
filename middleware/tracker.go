package middleware

import (
	"iter"
	"time"
)

// Tracker is a bounded table of per-key records that expire: the memory
// of a defence that counts what a client (an address group) or a name
// does, such as the auth stage's ban guard or PCTP's login budgets. It
// holds at most Max keys. A record its stale function says may be
// forgotten is dropped when it is met, and when the table is full; a full
// table with none to forget drops one record, preferring one that is not
// busy, then the one last active the longest ago (its rank function says
// both). It does not lock: its owner's lock guards it.
type Tracker[K comparable, V any] struct {
	// Max bounds the keys held.
	Max int

	stale func(v *V, now time.Time) bool
	rank  func(v *V, now time.Time) (busy bool, last time.Time)
	m     map[K]*V
}

// NewTracker returns an empty tracker of at most max keys. stale reports
// whether a record may be forgotten at now; rank says whether it is busy
// (evicted last) and when it was last active.
func NewTracker[K comparable, V any](max int, stale func(v *V, now time.Time) bool, rank func(v *V, now time.Time) (busy bool, last time.Time)) *Tracker[K, V] {
	return &Tracker[K, V]{Max: max, stale: stale, rank: rank, m: make(map[K]*V)}
}

// Get returns k's record, or nil when there is none or it was stale (it
// is then forgotten).
func (t *Tracker[K, V]) Get(k K, now time.Time) *V {
	v, ok := t.m[k]
	if !ok {
		return nil
	}
	if t.stale(v, now) {
		delete(t.m, k)
		return nil
	}
	return v
}

// Add stores v as k's record, first making room when the table is full.
func (t *Tracker[K, V]) Add(k K, v *V, now time.Time) {
	if _, held := t.m[k]; !held && len(t.m) >= t.Max {
		t.evict(now)
	}
	t.m[k] = v
}

// Len is the number of keys held.
func (t *Tracker[K, V]) Len() int { return len(t.m) }

// All yields every record held, stale ones included.
func (t *Tracker[K, V]) All() iter.Seq2[K, *V] {
	return func(yield func(K, *V) bool) {
		for k, v := range t.m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// evict drops every stale record and, if none was, the one record of
// lowest rank.
func (t *Tracker[K, V]) evict(now time.Time) {
	var victim K
	var victimAt time.Time
	victimBusy, found, dropped := false, false, false
	for k, v := range t.m {
		if t.stale(v, now) {
			delete(t.m, k)
			dropped = true
			continue
		}
		busy, last := t.rank(v, now)
		if !found || !busy && victimBusy || busy == victimBusy && last.Before(victimAt) {
			victim, victimAt, victimBusy, found = k, last, busy, true
		}
	}
	if !dropped && found {
		delete(t.m, victim)
	}
}
