package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// sessionTable tracks open sessions so that an administrator can list and
// end them, and a change can end a deleted user's. It is touched when a
// session starts, when its user and its request are known and when it
// ends; never on the relay path (the byte counters are the Session's
// atomics).
type sessionTable struct {
	mu sync.Mutex
	m  map[uint64]*liveSession
}

type liveSession struct {
	s      *middleware.Session // for its atomics only
	cancel func(error)
	// client and outbound are the connections an end closes: the
	// accepted one from the start, the outbound one once dialled
	// (setOutbound).
	client, outbound net.Conn
	// Set under the table's lock, as the handshake learns them.
	user string
	// external: the user came from outside the user table (a directory),
	// so its absence there does not end the session.
	external bool
	cmd      middleware.Command
	target   middleware.Target
	// The previous listing's sample, for the current rate.
	sampleAt    time.Time
	sampleBytes int64
}

func (t *sessionTable) init() { t.m = map[uint64]*liveSession{} }

// add registers a session, its context's cancel and its accepted conn.
func (t *sessionTable) add(s *middleware.Session, cancel func(error), client net.Conn) {
	t.mu.Lock()
	t.m[s.ID] = &liveSession{s: s, cancel: cancel, client: client, sampleAt: s.Start}
	t.mu.Unlock()
}

// setOutbound registers the session's outbound conn, so that an end closes
// it too. A session whose context is already done (ended while it
// dialled) has it closed here: an end either sees it registered or has
// cancelled ctx before this looks (see end).
func (t *sessionTable) setOutbound(ctx context.Context, id uint64, out net.Conn) {
	t.mu.Lock()
	if ls := t.m[id]; ls != nil {
		ls.outbound = out
	}
	t.mu.Unlock()
	if ctx.Err() != nil {
		_ = closeFor(context.Cause(ctx), out)
	}
}

func (t *sessionTable) remove(id uint64) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// setUser records the session's user, and whether it came from outside
// the user table.
func (t *sessionTable) setUser(id uint64, user string, external bool) {
	t.mu.Lock()
	if ls := t.m[id]; ls != nil {
		ls.user, ls.external = user, external
	}
	t.mu.Unlock()
}

// setRequest records the session's command and destination.
func (t *sessionTable) setRequest(id uint64, cmd middleware.Command, target middleware.Target) {
	t.mu.Lock()
	if ls := t.m[id]; ls != nil {
		ls.cmd, ls.target = cmd, target
	}
	t.mu.Unlock()
}

// orphans returns the sessions whose user is not in users (users from
// outside the table excepted).
func (t *sessionTable) orphans(users *Users) []uint64 {
	return t.match(func(ls *liveSession) bool { return ls.user != "" && !ls.external && !users.Has(ls.user) })
}

// match returns the ids of the sessions for which f is true.
func (t *sessionTable) match(f func(*liveSession) bool) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []uint64
	for id, ls := range t.m {
		if f(ls) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t *sessionTable) kill(id uint64, cause error) bool {
	t.mu.Lock()
	ls := t.m[id]
	t.mu.Unlock()
	if ls == nil {
		return false
	}
	t.end(ls, cause)
	return true
}

// end ends a session: its context is cancelled with cause, then its
// connections are closed (reset if cause aborts it), which ends any read
// or write in its chain and relay. The cancel comes first, so a target
// registered after the conns are read here is closed by setOutbound.
func (t *sessionTable) end(ls *liveSession, cause error) {
	ls.cancel(cause)
	t.mu.Lock()
	client, out := ls.client, ls.outbound
	t.mu.Unlock()
	if client != nil {
		_ = closeFor(cause, client)
	}
	if out != nil {
		_ = closeFor(cause, out)
	}
}

// endAll ends every open session with cause, for Shutdown, once the
// sessions' parent context is cancelled: a session added after this has
// looked is born cancelled, and openSession closes it.
func (t *sessionTable) endAll(cause error) {
	t.mu.Lock()
	all := make([]*liveSession, 0, len(t.m))
	for _, ls := range t.m {
		all = append(all, ls)
	}
	t.mu.Unlock()
	for _, ls := range all {
		t.end(ls, cause)
	}
}

// Len is the number of open sessions.
func (t *sessionTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// list describes the open sessions, oldest first. Each listing takes a new
// rate sample, so Rate is the rate since the previous listing.
func (t *sessionTable) list(now time.Time) []middleware.SessionInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]middleware.SessionInfo, 0, len(t.m))
	for id, ls := range t.m {
		up, down := ls.s.Up.Load(), ls.s.Down.Load()
		info := middleware.SessionInfo{
			ID: id, User: ls.user, Client: ls.s.Client, Command: ls.cmd, Target: ls.target,
			Up: up, Down: down, Start: ls.s.Start, Active: ls.s.Start, Egress: ls.s.Egress(),
			Listener: ls.s.Listener,
		}
		if a := ls.s.Active.Load(); a != 0 {
			info.Active = time.Unix(0, a)
		}
		if dt := now.Sub(ls.sampleAt).Seconds(); dt > 0 {
			info.Rate = float64(up+down-ls.sampleBytes) / dt
		}
		ls.sampleAt, ls.sampleBytes = now, up+down
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b middleware.SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Sessions lists the open connections, oldest first.
func (a *Admin) Sessions() []middleware.SessionInfo { return a.r.sessions.list(time.Now()) }

// Kill closes the open connection id at once.
func (a *Admin) Kill(id uint64) error {
	if !a.r.sessions.kill(id, ErrKilled) {
		return fmt.Errorf("%w: %d", ErrNoSuchSession, id)
	}
	return nil
}

// killUserHere closes every open connection of a user on this instance
// and returns how many.
func (r *Runtime) killUserHere(name string) int {
	n := 0
	for _, id := range r.sessions.match(func(ls *liveSession) bool { return ls.user == name }) {
		if r.sessions.kill(id, ErrKilled) {
			n++
		}
	}
	return n
}

// aborts reports whether a session ended by cause is aborted rather than
// closed: an administrator ended it (KILL, KILL USER, or DEL of its user).
// Its connections are then reset, so nothing more is delivered either way.
func aborts(cause error) bool {
	return errors.Is(cause, ErrKilled) || errors.Is(cause, ErrUserDeleted)
}

// closeFor closes c as the end of its session, cause, requires: at once
// with a reset (SO_LINGER 0: the unsent queue is dropped) when the session
// is aborted, else in order. It looks through conn wrappers that declare
// middleware.ReadThrough for the socket.
func closeFor(cause error, c net.Conn) error {
	if aborts(cause) {
		for inner := c; inner != nil; {
			if l, ok := inner.(interface{ SetLinger(int) error }); ok {
				_ = l.SetLinger(0)
				break
			}
			u, ok := inner.(middleware.ReadThrough)
			if !ok {
				break
			}
			inner = u.Inner()
		}
	}
	return c.Close()
}
