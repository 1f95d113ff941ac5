// Package metrics is the "metrics" stage: per-connection numbers kept as
// aggregates and histograms, per user under a cap, for PCTP's STATS and
// STATS USER and for Prometheus.
//
// Before the rest of the chain runs, the stage wraps the Session's Dialer
// to time each dial (connect latency). After it, however it ends, it
// records the connection's duration, bytes each way, reply code and the
// user's numbers. Everything lives in the shared pool under the stage's
// name, so counters survive live changes and stay monotonic; STATS and the
// Prometheus collector read the same counters.
package metrics

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "metrics"

const (
	// DefaultMaxUsers is how many users are tracked one by one when
	// max_users is absent.
	DefaultMaxUsers = 1000
	// OtherUser is the name (and Prometheus label value) under which the
	// users beyond max_users are counted together.
	OtherUser = "_other"
)

// defaultLatencyBuckets are the connect-latency bucket bounds when
// latency_buckets is absent. Never modified.
var defaultLatencyBuckets = []time.Duration{
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// durationBuckets are the session-duration bucket bounds. Never modified.
var durationBuckets = []time.Duration{
	100 * time.Millisecond, 500 * time.Millisecond, time.Second,
	5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "connect latency, duration, bytes and reply codes as histograms and per-user counters, for STATS and Prometheus",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// MaxUsers caps how many users are tracked one by one; the others are
	// counted together under OtherUser. 0 counts every user there.
	MaxUsers int `json:"max_users"`
	// LatencyBuckets are the upper bounds of the connect-latency
	// histogram, strictly ascending.
	LatencyBuckets middleware.List[middleware.Duration] `json:"latency_buckets"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config {
	b := make(middleware.List[middleware.Duration], len(defaultLatencyBuckets))
	for i, d := range defaultLatencyBuckets {
		b[i] = middleware.Duration(d)
	}
	return Config{MaxUsers: DefaultMaxUsers, LatencyBuckets: b}
}

// stage is immutable after New; the numbers live in state.
type stage struct {
	cfg     Config
	state   *state
	latency *histogram // the histogram of cfg.LatencyBuckets, in state
	desc    *descs
	now     func() time.Time // time.Now; a fake clock in tests
}

var (
	_ middleware.Middleware      = (*stage)(nil)
	_ middleware.StatsSource     = (*stage)(nil)
	_ middleware.UserStatsSource = (*stage)(nil)
	_ middleware.Tunable         = (*stage)(nil)
	_ middleware.Dialer          = (*timedDialer)(nil)
	_ prometheus.Collector       = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "metrics" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.MaxUsers < 0 {
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "max_users", cfg.MaxUsers, ErrNegative)
	}
	bounds, err := latencyBounds(cfg.LatencyBuckets)
	if err != nil {
		return nil, err
	}
	c := middleware.Get(p.Shared, p.Name, newState)
	return &stage{
		cfg:     cfg,
		state:   c,
		latency: c.latencyHistogram(bounds),
		desc:    newDescs(p.Name),
		now:     time.Now,
	}, nil
}

// latencyBounds checks the configured buckets: at least one, each above
// zero, each above the one before.
func latencyBounds(buckets []middleware.Duration) ([]time.Duration, error) {
	if len(buckets) == 0 {
		return nil, fmt.Errorf("%w: key %q: empty: %w", middleware.ErrBadValue, "latency_buckets", ErrBuckets)
	}
	bounds := make([]time.Duration, len(buckets))
	for i, b := range buckets {
		bounds[i] = time.Duration(b)
		if bounds[i] <= 0 || (i > 0 && bounds[i] <= bounds[i-1]) {
			return nil, fmt.Errorf("%w: key %q: %s at index %d: %w", middleware.ErrBadValue, "latency_buckets", b, i, ErrBuckets)
		}
	}
	return bounds, nil
}

// Wrap times the dial before next and records the connection after next,
// however next ends (a panic included, so no live session leaks).
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Dialer = &timedDialer{next: s.Dialer, h: st.latency, now: st.now}
		st.state.tally.Begin(s)
		defer st.end(s)
		return next.ServeConn(ctx, s)
	})
}

// end records a finished session: its bytes, reply, duration and user.
func (st *stage) end(s *middleware.Session) {
	c := st.state
	up, down := c.tally.End(s)
	if s.AuthState == middleware.AuthFailed {
		c.authFailed.Add(1)
	}
	if !s.Start.IsZero() {
		c.duration.observe(s.Duration())
	}
	if s.User == "" {
		return
	}
	e := c.users.get(s.User, st.cfg.MaxUsers)
	e.conns.Add(1)
	e.up.Add(up)
	e.down.Add(down)
	if failed(s) {
		e.failures.Add(1)
	}
	last := s.End
	if last.IsZero() {
		last = st.now()
	}
	e.seen(last.Unix())
}

// failed reports whether a session counts as a failure for its user: its
// authentication failed, or it did not get reply 0 (succeeded).
func failed(s *middleware.Session) bool {
	return s.AuthState == middleware.AuthFailed || !s.ReplySent || s.Reply != middleware.ReplySucceeded
}

// timedDialer observes how long each successful dial of the inner Dialer
// takes, from the call to its return. Failed dials are counted by reply
// code when the session ends.
type timedDialer struct {
	next middleware.Dialer
	h    *histogram
	now  func() time.Time
}

// DialContext dials with the inner Dialer and times it.
func (d *timedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	start := d.now()
	conn, err := d.next.DialContext(ctx, network, address)
	if err == nil {
		d.h.observe(d.now().Sub(start))
	}
	return conn, err
}

// Stats implements middleware.StatsSource. It adds to the keys of the
// accounting stage: the connect latency's estimated median and 99th
// percentile in milliseconds and how many dials were timed, the bytes
// relayed each way (live), and how many users are tracked one by one.
func (st *stage) Stats() []middleware.Stat {
	hs := st.latency.snapshot()
	t := st.state.tally.Snapshot()
	up, down := t.Up, t.Down
	return []middleware.Stat{
		{Key: "connect_latency_ms.p50", Value: millis(hs.quantile(0.5))},
		{Key: "connect_latency_ms.p99", Value: millis(hs.quantile(0.99))},
		{Key: "connect_latency_ms.count", Value: int64(hs.count)},
		{Key: "bytes_up_total", Value: up},
		{Key: "bytes_down_total", Value: down},
		{Key: "users_tracked", Value: int64(st.state.users.tracked())},
	}
}

// millis rounds d to the nearest millisecond.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond/2) / time.Millisecond)
}

// UserStats implements middleware.UserStatsSource: the numbers of user, or
// of the users beyond the cap for OtherUser. ok is false for a user with
// no numbers, a user counted under OtherUser among them.
func (st *stage) UserStats(user string) ([]middleware.Stat, bool) {
	e, ok := st.state.users.lookup(user)
	if !ok {
		return nil, false
	}
	return []middleware.Stat{
		{Key: "connections", Value: e.conns.Load()},
		{Key: "failures", Value: e.failures.Load()},
		{Key: "bytes_up", Value: e.up.Load()},
		{Key: "bytes_down", Value: e.down.Load()},
		{Key: "last_seen_unix", Value: e.lastSeen.Load()},
	}, true
}

// Settings implements middleware.Tunable.
func (st *stage) Settings() []middleware.Setting {
	return []middleware.Setting{
		{Key: "max_users", Value: strconv.Itoa(st.cfg.MaxUsers),
			Help: "users tracked one by one; the others are counted as " + OtherUser},
		{Key: "latency_buckets", Value: st.cfg.LatencyBuckets.String(),
			Help: "connect-latency histogram bounds, ascending (a change restarts the histogram)"},
	}
}
