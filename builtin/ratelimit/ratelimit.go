// Package ratelimit is the "ratelimit" stage: it limits the bandwidth of
// each connection and of each user, in both directions, by wrapping the
// client connection.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "ratelimit"

// Limits and defaults of the burst key, in bytes.
const (
	// DefaultBurst is the burst when the key is absent.
	DefaultBurst = 64 << 10
	// MinBurst is the smallest burst allowed.
	MinBurst = 4096
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "limits bandwidth per connection and per user, in each direction",
	})
}

// Config is the stage's entry in the chain list. Rates are in bytes per
// second and apply to each direction separately; 0 means unlimited.
type Config struct {
	// PerConnection limits each connection.
	PerConnection middleware.Size `json:"per_connection"`
	// PerUser limits all connections of one authenticated user together.
	PerUser middleware.Size `json:"per_user"`
	// Burst is how many bytes a limiter lets through at once after a
	// pause; it is also the largest single read or write the wrapper makes.
	Burst middleware.Size `json:"burst"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config { return Config{Burst: DefaultBurst} }

// stage is immutable after New.
type stage struct {
	cfg     Config
	perConn rate.Limit // 0 when unlimited
	burst   int
	users   *users
}

var (
	_ middleware.Middleware = (*stage)(nil)
	_ middleware.Tunable    = (*stage)(nil)
	_ middleware.Activator  = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "ratelimit" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Burst < MinBurst {
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "burst", cfg.Burst, ErrBurstTooSmall)
	}
	u := middleware.Get(p.Shared, p.Name, newUsers)
	return &stage{
		cfg:     cfg,
		perConn: rate.Limit(cfg.PerConnection),
		burst:   int(cfg.Burst),
		users:   u,
	}, nil
}

// Wrap replaces the client conn with a rate-limited one before next. With
// no limit configured it leaves the conn alone, so the relay can still let
// the kernel splice.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		if st.cfg.PerConnection == 0 && st.cfg.PerUser == 0 {
			return next.ServeConn(ctx, s)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c := &conn{Conn: s.Conn, ctx: ctx, cancel: cancel, s: s, chunk: st.burst}
		if st.perConn > 0 {
			c.read = rate.NewLimiter(st.perConn, st.burst)
			c.write = rate.NewLimiter(st.perConn, st.burst)
		}
		if st.cfg.PerUser > 0 {
			c.users = st.users
		}
		s.Conn = c
		s.Pacer = c // UDP datagrams are limited by the same limiters
		return next.ServeConn(ctx, s)
	})
}

// Activate implements middleware.Activator: the per-user limiters, the
// running connections' included, take the settings of the stage that went
// live.
func (st *stage) Activate() { st.users.set(limitOf(st.cfg.PerUser), st.burst) }

// Settings implements middleware.Tunable.
func (st *stage) Settings() []middleware.Setting {
	return []middleware.Setting{
		{Key: "per_connection", Value: st.cfg.PerConnection.String(),
			Help: "bytes per second per connection and direction, for new connections (0 = unlimited)"},
		{Key: "per_user", Value: st.cfg.PerUser.String(),
			Help: "bytes per second per user and direction, shared by the user's connections (0 = unlimited)"},
		{Key: "burst", Value: strconv.Itoa(st.burst),
			Help: "bytes a limiter lets through at once (min 4096)"},
	}
}

// limitOf turns a configured rate into a limiter's, 0 being unlimited.
func limitOf(bps middleware.Size) rate.Limit {
	if bps == 0 {
		return rate.Inf
	}
	return rate.Limit(bps)
}

// pair is the limiters of one user: bytes read from and written to the
// user's clients.
type pair struct {
	read, write *rate.Limiter
}

// users is the state that outlives a rebuild: the per-user limiters, keyed
// by user name, and the settings they follow.
//
// The settings are the live stage's: a stage sets them when it is
// activated (middleware.Activator), updating every limiter with
// SetLimit/SetBurst so the user's running connections follow too, and
// limiters created later use them. A stage built by a change that failed
// never touches them, and connections still running on an old chain
// cannot bring its settings back.
type users struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	m     map[string]*pair
}

func newUsers() *users {
	return &users{limit: rate.Inf, burst: DefaultBurst, m: make(map[string]*pair)}
}

// set brings every limiter, and those created from now on, to limit and
// burst.
func (u *users) set(limit rate.Limit, burst int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.limit, u.burst = limit, burst
	for _, p := range u.m {
		for _, l := range [...]*rate.Limiter{p.read, p.write} {
			l.SetLimit(limit)
			l.SetBurst(burst)
		}
	}
}

// get returns the limiters of user name, creating them the first time.
func (u *users) get(name string) *pair {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.m[name]
	if !ok {
		p = &pair{read: rate.NewLimiter(u.limit, u.burst), write: rate.NewLimiter(u.limit, u.burst)}
		u.m[name] = p
	}
	return p
}
