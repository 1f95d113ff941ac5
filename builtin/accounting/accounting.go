// Package accounting is the "accounting" stage: it counts connections and
// the bytes they relay, live, for PCTP's STATS.
package accounting

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "accounting"

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "counts connections, bytes proxied (live) and connections by SOCKS reply code for STATS",
	})
}

// Config is the stage's entry in the chain list. The stage has no settings.
type Config struct{}

// counters is the state that outlives a rebuild of the chain. The byte
// counters themselves live on the sessions (atomics updated by the relay);
// the mutex guards only the set of live sessions and the closed total, and
// is taken twice per connection, never per byte.
type counters struct {
	created time.Time
	total   atomic.Int64      // connections accepted
	byReply [256]atomic.Int64 // connections by REP code sent
	mu      sync.Mutex        // guards live and closed
	live    map[*middleware.Session]struct{}
	closed  int64 // bytes relayed by sessions that have ended
}

func newCounters() *counters {
	return &counters{created: time.Now(), live: make(map[*middleware.Session]struct{})}
}

// open counts the connection before registering it, so a reader never sees
// more current connections than total ones.
func (c *counters) open(s *middleware.Session) {
	c.total.Add(1)
	c.mu.Lock()
	c.live[s] = struct{}{}
	c.mu.Unlock()
}

// close moves the session's bytes from the live sum to the closed total in
// one step, so total_bytes_proxied never counts them twice or not at all.
func (c *counters) close(s *middleware.Session) {
	c.mu.Lock()
	delete(c.live, s)
	c.closed += s.Bytes()
	c.mu.Unlock()
	if s.ReplySent {
		c.byReply[s.Reply].Add(1)
	}
}

// stage is immutable after New.
type stage struct {
	state *counters
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "accounting" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	var cfg Config
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return &stage{state: middleware.Get(p.Shared, p.Name, newCounters)}, nil
}

// Wrap counts the session as live before next and moves it to the totals
// after next, however next ends (a panic included, so no session leaks).
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		st.state.open(s)
		defer st.state.close(s)
		return next.ServeConn(ctx, s)
	})
}

// Stats implements middleware.StatsSource. The first four keys are PCTP's
// mandatory ones, in the order it requires; uptime_seconds and one
// connections_by_reply.<code> per reply code seen, by code, follow.
func (st *stage) Stats() []middleware.Stat {
	c := st.state
	c.mu.Lock()
	current := int64(len(c.live))
	var liveBytes int64
	for s := range c.live {
		liveBytes += s.Bytes()
	}
	closed := c.closed
	c.mu.Unlock()

	stats := make([]middleware.Stat, 0, 8)
	stats = append(stats,
		middleware.Stat{Key: "current_connections", Value: current},
		middleware.Stat{Key: "total_connections", Value: c.total.Load()},
		middleware.Stat{Key: "current_bytes_proxied", Value: liveBytes},
		middleware.Stat{Key: "total_bytes_proxied", Value: closed + liveBytes},
		middleware.Stat{Key: "uptime_seconds", Value: int64(time.Since(c.created) / time.Second)},
	)
	for code := range c.byReply {
		if n := c.byReply[code].Load(); n > 0 {
			stats = append(stats, middleware.Stat{Key: "connections_by_reply." + strconv.Itoa(code), Value: n})
		}
	}
	return stats
}
