// Package accounting is the "accounting" stage: it counts connections and
// the bytes they relay, live, for PCTP's STATS.
package accounting

import (
	"context"
	"strconv"
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

// counters is the state that outlives a rebuild of the chain: the
// sessions' tally and when counting began.
type counters struct {
	created time.Time
	tally   *middleware.Tally
}

func newCounters() *counters {
	return &counters{created: time.Now(), tally: middleware.NewTally()}
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
		st.state.tally.Begin(s)
		defer st.state.tally.End(s)
		return next.ServeConn(ctx, s)
	})
}

// Stats implements middleware.StatsSource. The first four keys are PCTP's
// mandatory ones, in the order it requires; uptime_seconds and one
// connections_by_reply.<code> per reply code seen, by code, follow.
func (st *stage) Stats() []middleware.Stat {
	c := st.state
	t := c.tally.Snapshot()
	stats := make([]middleware.Stat, 0, 8)
	stats = append(stats,
		middleware.Stat{Key: "current_connections", Value: t.Open},
		middleware.Stat{Key: "total_connections", Value: t.Total},
		middleware.Stat{Key: "current_bytes_proxied", Value: t.LiveUp + t.LiveDown},
		middleware.Stat{Key: "total_bytes_proxied", Value: t.Up + t.Down},
		middleware.Stat{Key: "uptime_seconds", Value: int64(time.Since(c.created) / time.Second)},
	)
	c.tally.Replies(func(code middleware.Reply, n int64) {
		stats = append(stats, middleware.Stat{Key: "connections_by_reply." + strconv.Itoa(int(code)), Value: n})
	})
	return stats
}
