package middleware_test

import (
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

type trackRec struct {
	last    time.Time
	expires time.Time
	busy    bool
}

func newTestTracker(max int) *middleware.Tracker[string, trackRec] {
	return middleware.NewTracker[string](max,
		func(r *trackRec, now time.Time) bool { return !now.Before(r.expires) },
		func(r *trackRec, _ time.Time) (bool, time.Time) { return r.busy, r.last })
}

// TestTrackerEviction: a full tracker forgets every stale record first;
// with none, the record not busy and last active the longest ago.
func TestTrackerEviction(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tr := newTestTracker(3)
	tr.Add("a", &trackRec{last: at(1), expires: at(100), busy: true}, at(1))
	tr.Add("b", &trackRec{last: at(2), expires: at(100)}, at(2))
	tr.Add("c", &trackRec{last: at(3), expires: at(100)}, at(3))
	tr.Add("d", &trackRec{last: at(4), expires: at(100)}, at(4)) // evicts b: a is older but busy
	if tr.Len() != 3 || tr.Get("b", at(4)) != nil || tr.Get("a", at(4)) == nil {
		t.Fatalf("after d: len %d, b %v, a %v", tr.Len(), tr.Get("b", at(4)), tr.Get("a", at(4)))
	}
	tr.Add("a", &trackRec{last: at(5), expires: at(100), busy: true}, at(5)) // a key held: nothing evicted
	if tr.Len() != 3 {
		t.Fatalf("replacing a record evicted one: len %d", tr.Len())
	}
	// c and d go stale at 50; the next key drops both and keeps a.
	for _, k := range []string{"c", "d"} {
		tr.Get(k, at(5)).expires = at(50)
	}
	tr.Add("e", &trackRec{last: at(60), expires: at(100)}, at(60))
	if tr.Len() != 2 || tr.Get("a", at(60)) == nil || tr.Get("e", at(60)) == nil {
		t.Fatalf("after e: len %d", tr.Len())
	}
	// Get forgets a stale record.
	if tr.Get("e", at(100)) != nil || tr.Len() != 1 {
		t.Fatalf("a stale record was returned or kept: len %d", tr.Len())
	}
	n := 0
	for range tr.All() {
		n++
	}
	if n != 1 {
		t.Errorf("All yielded %d records, want 1", n)
	}
}
