// Package limits is the "limits" stage: it caps the connections the proxy
// serves at once, in all, from one client address and for one user.
//
// Every limit counts sessions, whatever their command: a BIND or a UDP
// association is a connection like a CONNECT. The total and per-address
// limits are checked as a connection arrives, before the rest of the
// chain: over either, the session ends at once and the engine closes the
// client connection before reading a byte of the handshake. The user is
// known only after the terminal handler has authenticated the client, so
// the per-user limit is checked when it admits the request (a
// middleware.Admission), before it dials, listens for a BIND peer or opens
// a UDP relay: over it, the client gets reply 0x02 (not allowed).
//
// The counts live in the shared pool under the stage's name, so every
// rebuild of the chain (every live change) sees the same counts, and a
// connection started on an old chain still gives its place back when it ends.
package limits

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "limits"

const (
	// ReservedFiles is how many open files the automatic max_connections
	// leaves to the rest of the server (listeners, the admin port, logs,
	// DNS lookups).
	ReservedFiles = 64
	// FallbackMax is the automatic max_connections where the open-file
	// limit cannot be read.
	FallbackMax = 1024
	// logInterval is the least time between two log lines of one reason.
	logInterval = time.Second
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "caps concurrent connections: in all, per client address and per user",
	})
}

// Config is the stage's entry in the chain list. Every limit counts
// connections open at the same time.
type Config struct {
	// MaxConnections caps all connections together; 0 means automatic
	// (see AutomaticMax).
	MaxConnections int `json:"max_connections"`
	// PerIP caps the connections from one client address; 0 = unlimited.
	PerIP int `json:"per_ip"`
	// PerUser caps the connections of one authenticated user; 0 =
	// unlimited. Anonymous connections are not counted against it.
	PerUser int `json:"per_user"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config { return Config{} }

// AutomaticMax returns the total limit that max_connections: 0 stands for:
// half of what the open-file soft limit (RLIMIT_NOFILE) leaves after
// ReservedFiles descriptors, since every proxied connection holds two (the
// client's and the destination's), and at least 1. Where the limit cannot
// be read it is FallbackMax. It is read again each time the stage is built.
func AutomaticMax() int {
	soft, ok := openFileLimit()
	if !ok {
		return FallbackMax
	}
	return automaticMax(soft)
}

func automaticMax(soft uint64) int {
	if soft < ReservedFiles+2 {
		return 1
	}
	return int(min((soft-ReservedFiles)/2, math.MaxInt32))
}

// stage is immutable after New; the counts live in state.
type stage struct {
	cfg   Config
	max   int64 // the total limit in force: cfg.MaxConnections or the automatic one
	state *state
	log   hclog.Logger
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.Tunable     = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
	_ middleware.Admission   = (*userPlace)(nil)
)

// New builds the stage from p. It is registered as the "limits" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	for _, kv := range [...]struct {
		key string
		v   int
	}{{"max_connections", cfg.MaxConnections}, {"per_ip", cfg.PerIP}, {"per_user", cfg.PerUser}} {
		if kv.v < 0 {
			return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, kv.key, kv.v, ErrNegative)
		}
	}
	maxConns := cfg.MaxConnections
	if maxConns == 0 {
		maxConns = AutomaticMax()
	}
	log := p.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &stage{
		cfg:   cfg,
		max:   int64(maxConns),
		state: middleware.Get(p.Shared, p.Name, newState),
		log:   log,
	}, nil
}

// Wrap takes a place in the total and per-address counts before next, or
// ends the session without calling next; it installs an Admission that
// takes the user's place once the request is known, whatever the command;
// and after next it gives back every place the session took.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		ip := s.Client.Addr().Unmap().WithZone("")
		if !st.state.takeTotal(st.max) {
			st.refused(reasonTotal, "connection refused: too many connections", "client", ip.String(), "limit", st.max)
			return fmt.Errorf("%w (limit %d)", ErrTooManyConnections, st.max)
		}
		defer st.state.total.Add(-1)
		// A client without an IP address (not a TCP listener) has no
		// per-address count.
		if ip.IsValid() {
			if !st.state.byIP.take(ip, st.cfg.PerIP) {
				st.refused(reasonIP, "connection refused: too many connections from one address", "client", ip.String(), "limit", st.cfg.PerIP)
				return fmt.Errorf("%w: %s (limit %d)", ErrTooManyFromIP, ip, st.cfg.PerIP)
			}
			defer st.state.byIP.give(ip)
		}
		p := &userPlace{st: st, ip: ip}
		s.Admissions = append(s.Admissions, p)
		defer p.release()
		return next.ServeConn(ctx, s)
	})
}

// Settings implements middleware.Tunable.
func (st *stage) Settings() []middleware.Setting {
	maxHelp := "most connections at once in all, for new connections (0 = automatic: (open-file limit - 64) / 2"
	if st.cfg.MaxConnections == 0 {
		maxHelp += "; this value is the automatic one)"
	} else {
		maxHelp += ")"
	}
	return []middleware.Setting{
		{Key: "max_connections", Value: strconv.FormatInt(st.max, 10), Help: maxHelp},
		{Key: "per_ip", Value: strconv.Itoa(st.cfg.PerIP),
			Help: "most connections at once from one client address (0 = unlimited)"},
		{Key: "per_user", Value: strconv.Itoa(st.cfg.PerUser),
			Help: "most connections at once of one authenticated user; over it the client gets reply 0x02 (0 = unlimited)"},
	}
}

// Stats implements middleware.StatsSource. The refusal counts are
// cumulative since start-up; limit_connections is the number of
// connections open through this stage now.
func (st *stage) Stats() []middleware.Stat {
	return []middleware.Stat{
		{Key: "limit_refused_total", Value: st.state.refused[reasonTotal].Load()},
		{Key: "limit_refused_per_ip", Value: st.state.refused[reasonIP].Load()},
		{Key: "limit_refused_per_user", Value: st.state.refused[reasonUser].Load()},
		{Key: "limit_connections", Value: st.state.total.Load()},
	}
}

// refused counts a refusal and logs it at WARN, at most once per second
// per reason; the line says how many refusals of that reason went unlogged
// since the last one.
func (st *stage) refused(r reason, msg string, args ...any) {
	st.state.refused[r].Add(1)
	if ok, unlogged := st.state.gates[r].allow(time.Now()); ok {
		st.log.Warn(msg, append(args, "unlogged_since_last", unlogged)...)
	}
}

// reason is why a connection was refused.
type reason int

const (
	reasonTotal reason = iota
	reasonIP
	reasonUser
	numReasons
)

// state is what outlives a rebuild: the counts and the log gates. It
// synchronises itself.
type state struct {
	total   atomic.Int64
	refused [numReasons]atomic.Int64
	gates   [numReasons]logGate

	byIP   places[netip.Addr]
	byUser places[string]
}

func newState() *state { return new(state) }

// takeTotal takes a place if fewer than limit connections are open.
func (s *state) takeTotal(limit int64) bool {
	for {
		n := s.total.Load()
		if n >= limit {
			return false
		}
		if s.total.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// places counts the places taken per key (client address, user name);
// a key holding none has no entry. It synchronises itself.
type places[K comparable] struct {
	mu sync.Mutex
	m  map[K]int // no zero entries
}

// take takes a place for k unless limit (> 0) places are taken. Places
// are counted even without a limit, so that a limit set later while the
// proxy runs sees the connections already open.
func (p *places[K]) take(k K, limit int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.m[k]
	if limit > 0 && n >= limit {
		return false
	}
	if p.m == nil {
		p.m = make(map[K]int)
	}
	p.m[k] = n + 1
	return true
}

// give gives back a place taken by take.
func (p *places[K]) give(k K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.m[k] - 1; n > 0 {
		p.m[k] = n
	} else {
		delete(p.m, k)
	}
}

// held returns how many places k holds, and how many keys hold some.
func (p *places[K]) held(k K) (n, keys int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[k], len(p.m)
}

// logGate lets one log line through per logInterval.
type logGate struct {
	next     atomic.Int64 // Unix nanoseconds before which no line is written
	unlogged atomic.Int64 // refusals not logged since the last line
}

// allow reports whether a line may be written at now and, if so, how many
// calls were turned down since the last line.
func (g *logGate) allow(now time.Time) (ok bool, unlogged int64) {
	t := now.UnixNano()
	next := g.next.Load()
	if t < next || !g.next.CompareAndSwap(next, t+int64(logInterval)) {
		g.unlogged.Add(1)
		return false, 0
	}
	return true, g.unlogged.Swap(0)
}

// userPlace is the session's middleware.Admission: the terminal handler
// asks it once the user and the request are known, for CONNECT, BIND and
// UDP ASSOCIATE alike, in the session's goroutine; the place it takes is
// held until next returns.
type userPlace struct {
	st *stage
	ip netip.Addr // for the log

	user string // whose place this session holds, "" when none
}

// Admit takes the user's place, or refuses with reply 0x02 when the user
// is at the limit. Anonymous sessions take no place; a session that holds
// one already takes no other.
func (p *userPlace) Admit(_ context.Context, s *middleware.Session) error {
	user := s.User
	if user == "" || p.user != "" {
		return nil
	}
	limit := p.st.cfg.PerUser
	if !p.st.state.byUser.take(user, limit) {
		p.st.refused(reasonUser, "connection refused: too many connections for one user", "client", p.ip.String(), "user", user, "cmd", s.Command.String(), "limit", limit)
		return &middleware.ReplyError{
			Code: middleware.ReplyNotAllowed,
			Err:  fmt.Errorf("%w: %q (limit %d)", ErrTooManyForUser, user, limit),
		}
	}
	p.user = user
	return nil
}

// release gives back the user's place if this session holds it.
func (p *userPlace) release() {
	if p.user != "" {
		p.st.state.byUser.give(p.user)
		p.user = ""
	}
}
