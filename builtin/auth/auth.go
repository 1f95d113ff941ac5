// Package auth is the "auth" stage: it installs the Authenticator that the
// terminal handler uses to choose a SOCKS method and to check RFC 1929
// credentials against the live user table, counts failed logins, and bans
// client addresses that fail too often (brute-force defence).
package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "auth"

// Limits of the brute-force settings.
const (
	// MaxFailuresLimit is the largest max_failures accepted.
	MaxFailuresLimit = 1_000_000
	// MaxDuration is the longest failure_window, ban, max_ban or
	// ban_memory accepted (a year); failure_window and ban are at least
	// a second.
	MaxDuration = 365 * 24 * time.Hour
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "checks user names and passwords (RFC 1929) against the user table, bans addresses that fail too often; optionally lets anonymous clients in",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Anonymous lets clients in without credentials (method 0x00).
	Anonymous bool `json:"anonymous"`
	// MaxFailures is how many failed authentications a client address
	// may make in a burst; the next one bans it. 0 turns the guard off.
	MaxFailures int `json:"max_failures"`
	// FailureWindow is how long the allowance of MaxFailures failures
	// takes to refill (one failure every FailureWindow/MaxFailures).
	FailureWindow middleware.Duration `json:"failure_window"`
	// Ban is how long the first ban lasts.
	Ban middleware.Duration `json:"ban"`
	// MaxBan caps a ban that doubled.
	MaxBan middleware.Duration `json:"max_ban"`
	// BanMemory: a ban that starts within this of the end of the address's
	// previous ban lasts twice as long as that one (up to MaxBan).
	BanMemory middleware.Duration `json:"ban_memory"`
	// Backends are the sources of users, asked in order; the first that
	// knows the user decides. Default: the local list alone.
	Backends []BackendConfig `json:"backends"`
	// Cache is how long a password a remote backend accepted is accepted
	// again without asking it (0: always ask).
	Cache middleware.Duration `json:"cache"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config {
	return Config{
		Anonymous:     false,
		MaxFailures:   5,
		FailureWindow: middleware.Duration(time.Minute),
		Ban:           middleware.Duration(time.Minute),
		MaxBan:        middleware.Duration(time.Hour),
		BanMemory:     middleware.Duration(24 * time.Hour),
		Cache:         middleware.Duration(time.Minute),
	}
}

// validate checks the brute-force settings; the error wraps
// middleware.ErrBadValue and names the key.
func (c Config) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: key %q: %s", middleware.ErrBadValue, key, fmt.Sprintf(format, args...))
	}
	if c.MaxFailures < 0 || c.MaxFailures > MaxFailuresLimit {
		return bad("max_failures", "%d is not between 0 (guard off) and %d", c.MaxFailures, MaxFailuresLimit)
	}
	for _, d := range []struct {
		key string
		v   middleware.Duration
	}{
		{"failure_window", c.FailureWindow}, {"ban", c.Ban}, {"max_ban", c.MaxBan}, {"ban_memory", c.BanMemory},
		{"cache", c.Cache},
	} {
		if time.Duration(d.v) > MaxDuration {
			return bad(d.key, "%s is longer than %s", d.v, middleware.Duration(MaxDuration))
		}
	}
	switch {
	case time.Duration(c.FailureWindow) < time.Second:
		return bad("failure_window", "%s is shorter than 1s", c.FailureWindow)
	case time.Duration(c.Ban) < time.Second:
		return bad("ban", "%s is shorter than 1s", c.Ban)
	case c.MaxBan < c.Ban:
		return bad("max_ban", "%s is shorter than ban (%s)", c.MaxBan, c.Ban)
	}
	return nil
}

// policy returns the guard's policy.
func (c Config) policy() policy {
	per := time.Duration(c.FailureWindow) / time.Duration(max(c.MaxFailures, 1))
	return policy{
		burst:      c.MaxFailures,
		every:      rate.Every(per),
		window:     time.Duration(c.FailureWindow),
		workWindow: time.Duration(c.FailureWindow) + per,
		ban:        time.Duration(c.Ban),
		maxBan:     time.Duration(c.MaxBan),
		memory:     time.Duration(c.BanMemory),
	}
}

// counters is the state that outlives a rebuild of the chain.
type counters struct {
	failed atomic.Int64
}

// stage is immutable after New.
type stage struct {
	cfg    Config
	prefix string // of the backends' STATS keys: the stage's name and "_"
	authn  *authenticator
	state  *counters
}

var (
	_ middleware.Middleware      = (*stage)(nil)
	_ middleware.AnonymousAccess = (*stage)(nil)
	_ middleware.StatsSource     = (*stage)(nil)
	_ middleware.Tunable         = (*stage)(nil)
	_ middleware.LoginSource     = (*stage)(nil)
	_ middleware.ExternalSource  = (*stage)(nil)
	_ middleware.Authenticator   = (*clientAuth)(nil)
	_ middleware.ExternalUser    = (*clientAuth)(nil)
)

// New builds the stage from p. It is registered as the "auth" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	users := p.Users
	if users == nil {
		users = noUsers{}
	}
	logger := p.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	backends, err := buildBackends(cfg.Backends, p)
	if err != nil {
		return nil, err
	}
	return &stage{
		cfg:    cfg,
		prefix: p.Name + "_",
		authn: &authenticator{
			users:     users,
			backends:  backends,
			cache:     middleware.Get(p.Shared, p.Name+".cache", newCache),
			cacheTTL:  time.Duration(cfg.Cache),
			anonymous: cfg.Anonymous,
			on:        cfg.MaxFailures > 0,
			pol:       cfg.policy(),
			guard:     middleware.Get(p.Shared, p.Name+".guard", newGuard),
			board:     p.Bans,
			log:       logger,
		},
		state: middleware.Get(p.Shared, p.Name, func() *counters { return new(counters) }),
	}, nil
}

// Wrap installs an authenticator that knows the client's address before
// next, and counts a failed authentication after it.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Auth = &clientAuth{authenticator: st.authn, client: s.Client.Addr()}
		err := next.ServeConn(ctx, s)
		if s.AuthState == middleware.AuthFailed {
			st.state.failed.Add(1)
		}
		return err
	})
}

// Login implements middleware.LoginSource for the admin port: the same
// backends, in the same order, without the per-client budget (the admin
// port keeps its own).
func (st *stage) Login(ctx context.Context, user, password string) (middleware.Role, bool) {
	role, _, ok, _ := st.authn.decide(ctx, user, password, origin{listener: "pctp"}, nil)
	return role, ok
}

// HasExternalUsers implements middleware.ExternalSource: users may come
// from a directory or a hook.
func (st *stage) HasExternalUsers() bool { return len(st.authn.backends.remotes) > 0 }

// AllowsAnonymous implements middleware.AnonymousAccess.
func (st *stage) AllowsAnonymous() bool { return st.authn.anonymous }

// Stats implements middleware.StatsSource: failed_auths counts the
// connections whose authentication failed since the proxy started,
// auth_bans the bans issued since then, and auth_banned_now the address
// groups banned at this moment (0 while the guard is off).
func (st *stage) Stats() []middleware.Stat {
	var now int64
	if st.authn.on {
		now = st.authn.guard.bannedNow()
	}
	out := []middleware.Stat{
		{Key: "failed_auths", Value: st.state.failed.Load()},
		{Key: "auth_bans", Value: st.authn.guard.bans.Load()},
		{Key: "auth_banned_now", Value: now},
	}
	for _, r := range st.authn.backends.remotes {
		var down int64
		if r.health.down.Load() {
			down = 1
		}
		out = append(out,
			middleware.Stat{Key: st.prefix + r.name + "_checks", Value: r.health.checks.Load()},
			middleware.Stat{Key: st.prefix + r.name + "_errors", Value: r.health.errors.Load()},
			middleware.Stat{Key: st.prefix + r.name + "_down", Value: down})
	}
	if len(st.authn.backends.remotes) > 0 {
		out = append(out,
			middleware.Stat{Key: st.prefix + "cache_hits", Value: st.authn.cache.hits.Load()},
			middleware.Stat{Key: st.prefix + "cached_users", Value: int64(st.authn.cache.len())})
	}
	return out
}

// Settings implements middleware.Tunable: the brute-force settings may
// change live; the guard's state (failures, bans) is kept.
func (st *stage) Settings() []middleware.Setting {
	c := st.cfg
	return []middleware.Setting{
		{Key: "max_failures", Value: strconv.Itoa(c.MaxFailures),
			Help: "failed authentications an address may make in a burst before a ban (0 = guard off)"},
		{Key: "failure_window", Value: c.FailureWindow.String(),
			Help: "time for the max_failures allowance to refill"},
		{Key: "ban", Value: c.Ban.String(), Help: "length of a first ban"},
		{Key: "max_ban", Value: c.MaxBan.String(), Help: "cap of a ban doubled by repeated bans"},
		{Key: "ban_memory", Value: c.BanMemory.String(),
			Help: "a ban starting within this of the previous ban's end doubles it"},
	}
}

// authenticator is the stage's shared, immutable part of what it installs
// on every Session.
type authenticator struct {
	users     middleware.Credentials
	backends  chainConfig
	cache     *cache
	cacheTTL  time.Duration
	anonymous bool
	on        bool // the guard is on (max_failures > 0)
	pol       policy
	guard     *guard // never nil: kept for STATS even while off
	// board shares bans with the other instances of a fleet; nil on a
	// single node.
	board middleware.BanBoard
	log   hclog.Logger
}

// Accepts offers user/password when there is at least one user, and no
// authentication only when the stage allows anonymous clients.
func (a *authenticator) Accepts(m middleware.Method) bool {
	switch m {
	case middleware.MethodPassword:
		return a.users.Len() > 0 || len(a.backends.remotes) > 0
	case middleware.MethodNoAuth:
		return a.anonymous
	}
	return false
}

// clientAuth is the Authenticator installed on one Session: the stage's
// authenticator and the client's address.
type clientAuth struct {
	*authenticator
	client netip.Addr
	// external: the last successful Authenticate was decided by a remote
	// backend. Written and read in the handshake goroutine.
	external bool
}

// External implements middleware.ExternalUser: the user came from a
// directory or a hook, not from the user table.
func (a *clientAuth) External() bool { return a.external }

// Authenticate refuses a banned client without checking the password;
// otherwise it checks the credentials with the live user table. A wrong
// password costs the table one bcrypt comparison whether or not the user
// exists (so timing does not tell which users exist); while the guard is
// on, each such comparison is first taken from the client group's
// allowance (guard.spend), and a check beyond it is refused without
// bcrypt, so parallel guesses cannot buy CPU faster than the ban allows
// (a check that succeeds gives its share back).
// Each failure is logged once and counted against the client's address. A
// success does not clear the address's failures. The password never
// appears in the error or the log.
func (a *clientAuth) Authenticate(ctx context.Context, user, password string) (middleware.Role, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("auth: %w", err)
	}
	if a.on && a.bannedHere() {
		a.logFailure(user, true)
		return 0, fmt.Errorf("auth: user %q from %s: %w: %w", user, a.client, ErrBanned, middleware.ErrBadCredentials)
	}
	var spend func() bool
	var refunds []func()
	overBudget := false
	if a.on {
		spend = func() bool {
			refund, ok := a.guard.spend(a.client, a.pol)
			overBudget = !ok
			if ok {
				refunds = append(refunds, refund)
			}
			return ok
		}
	}
	role, remote, ok, downErr := a.decide(ctx, user, password, origin{listener: "socks", client: a.client}, spend)
	if ok {
		for _, refund := range refunds { // right passwords cost no allowance
			refund()
		}
		a.external = remote
		return role, nil
	}
	var f failure
	if a.on {
		f = a.guard.fail(a.client, a.pol)
	}
	a.logFailure(user, f.banned)
	if f.newBan > 0 && a.board != nil {
		a.board.Ban(middleware.ClientGroup(a.client), f.newBan)
	}
	if f.newBan > 0 {
		a.log.Warn("address banned", "listener", "socks", "client_ip", a.client.String(),
			"group", middleware.ClientGroup(a.client).String(), "for", f.newBan.String(),
			"until", f.until.UTC().Format(time.RFC3339))
	}
	if overBudget {
		return 0, fmt.Errorf("auth: user %q from %s: %w: %w", user, a.client, ErrCheckBudget, middleware.ErrBadCredentials)
	}
	if downErr != nil {
		return 0, fmt.Errorf("auth: user %q: %w: %w", user, downErr, middleware.ErrBadCredentials)
	}
	return 0, fmt.Errorf("auth: user %q: %w", user, middleware.ErrBadCredentials)
}

// bannedHere reports whether the client is banned by this instance's
// guard or by a ban another instance of the fleet posted.
func (a *clientAuth) bannedHere() bool {
	if a.guard.banned(a.client) {
		return true
	}
	if a.board != nil {
		_, banned := a.board.Banned(a.client)
		return banned
	}
	return false
}

// logFailure writes the one line per failed authentication that fail2ban
// and the like match: stable message and fields, the user name quoted.
func (a *clientAuth) logFailure(user string, banned bool) {
	a.log.Warn("authentication failed",
		"listener", "socks",
		"client_ip", a.client.String(),
		"user", hclog.Quote(user),
		"banned", banned)
}

// noUsers stands in for a missing user table.
type noUsers struct{}

func (noUsers) Verify(string, string, func() bool) (middleware.Role, bool) { return 0, false }
func (noUsers) Len() int                                                   { return 0 }
