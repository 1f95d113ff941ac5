package middleware

import (
	"sync"
	"sync/atomic"
)

// Tally counts sessions as they begin and end, and the bytes they move,
// open sessions included: the bytes of an open session are read live from
// its counters. It is for a stage's state in the Shared pool (accounting,
// metrics). The mutex is taken twice per session, never per byte.
type Tally struct {
	total   atomic.Int64
	byReply [256]atomic.Int64
	noReply atomic.Int64

	mu                   sync.Mutex
	live                 map[*Session]struct{}
	closedUp, closedDown int64 // bytes of the sessions that ended
}

// TallySnapshot is a Tally read at one moment.
type TallySnapshot struct {
	Open, Total      int64 // sessions open now, and ever begun
	LiveUp, LiveDown int64 // bytes moved so far by the open sessions
	Up, Down         int64 // bytes moved since the start, open sessions included
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{live: map[*Session]struct{}{}} }

// Begin counts a session and registers it as open.
func (t *Tally) Begin(s *Session) {
	t.total.Add(1)
	t.mu.Lock()
	t.live[s] = struct{}{}
	t.mu.Unlock()
}

// End moves a session's bytes from the open sum to the totals in one step,
// so the totals never count them twice or not at all, counts its reply
// code, and returns its bytes.
func (t *Tally) End(s *Session) (up, down int64) {
	t.mu.Lock()
	delete(t.live, s)
	up, down = s.Up.Load(), s.Down.Load()
	t.closedUp += up
	t.closedDown += down
	t.mu.Unlock()
	if s.ReplySent {
		t.byReply[s.Reply].Add(1)
	} else {
		t.noReply.Add(1)
	}
	return up, down
}

// Snapshot reads the tally.
func (t *Tally) Snapshot() TallySnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := TallySnapshot{Open: int64(len(t.live)), Total: t.total.Load()}
	for s := range t.live {
		ts.LiveUp += s.Up.Load()
		ts.LiveDown += s.Down.Load()
	}
	ts.Up, ts.Down = t.closedUp+ts.LiveUp, t.closedDown+ts.LiveDown
	return ts
}

// Replies calls f for each reply code sent by ended sessions, in code
// order, with how many got it; then NoReply says how many ended before
// any reply.
func (t *Tally) Replies(f func(code Reply, n int64)) {
	for code := range t.byReply {
		if n := t.byReply[code].Load(); n > 0 {
			f(Reply(code), n)
		}
	}
}

// NoReply is how many ended sessions never got a reply.
func (t *Tally) NoReply() int64 { return t.noReply.Load() }
