// Package quota is the "quota" stage: traffic quotas per user and period
// (day, week, month or a fixed total), counted in both directions, kept
// across restarts in the state store, enforced on new requests (reply
// 0x02) and on open connections (closed at the limit).
package quota

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "quota"

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "traffic quota per user and period (day, week, month, total), kept across restarts; over it, requests get reply 0x02 and open connections close",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// PerUser is the bytes a user may move per period, both directions
	// added up; 0 (the default) counts without limiting.
	PerUser middleware.Size `json:"per_user"`
	// Period is day, week (from Monday), month or total (never resets).
	Period string `json:"period"`
	// TimeZone is the IANA zone whose midnights start the periods.
	TimeZone string `json:"time_zone"`
	// SaveInterval is how often the counts are written to the state store
	// (and read back, with other instances' bytes, in a fleet).
	SaveInterval middleware.Duration `json:"save_interval"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config {
	return Config{
		Period:       PeriodMonth,
		TimeZone:     "UTC",
		SaveInterval: middleware.Duration(10 * time.Second),
	}
}

// stage is immutable after New.
type stage struct {
	cfg    Config
	limit  int64
	period period
	prefix string // of STATS keys: the stage's name and "_"
	usage  *usage
	log    hclog.Logger
	desc   *descs
}

var (
	_ middleware.Middleware      = (*stage)(nil)
	_ middleware.Admission       = (*stage)(nil)
	_ middleware.StatsSource     = (*stage)(nil)
	_ middleware.UserStatsSource = (*stage)(nil)
	_ middleware.QuotaKeeper     = (*stage)(nil)
	_ middleware.Tunable         = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "quota" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	per, err := parsePeriod(cfg.Period, cfg.TimeZone)
	if err != nil {
		return nil, err
	}
	if d := time.Duration(cfg.SaveInterval); d < time.Second || d > time.Hour {
		return nil, fmt.Errorf("%w: key \"save_interval\": %s is not between 1s and 1h", middleware.ErrBadValue, cfg.SaveInterval)
	}
	logger := p.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &stage{
		cfg:    cfg,
		limit:  int64(cfg.PerUser),
		period: per,
		prefix: p.Name + "_",
		usage:  middleware.Get(p.Shared, p.Name+".usage", func() *usage { return newUsage(p.Counters, logger, p.Name) }),
		log:    logger,
		desc:   newDescs(p.Name),
	}, nil
}

// Wrap wraps the client conn to count and cut its user's bytes, and
// admits the request only while the user is under the quota.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		st.usage.startSaving(time.Duration(st.cfg.SaveInterval))
		c := &conn{Conn: s.Conn, s: s, st: st}
		s.Conn = c
		s.Admissions = append(s.Admissions, st)
		return next.ServeConn(ctx, s)
	})
}

// Admit implements middleware.Admission: a user who has used the quota of
// the period gets reply 0x02 (connection not allowed by ruleset).
// Anonymous sessions have no quota.
func (st *stage) Admit(_ context.Context, s *middleware.Session) error {
	if s.User == "" {
		return nil
	}
	st.usage.roll(st.period)
	st.usage.ensureLoaded()
	a, _ := st.usage.account(s.User)
	if st.over(a.used()) {
		st.usage.refused.Add(1)
		return &middleware.ReplyError{Code: middleware.ReplyNotAllowed,
			Err: fmt.Errorf("user %q: %w (%d of %d bytes this period)", s.User, ErrQuotaReached, a.used(), st.limit)}
	}
	return nil
}

// Stats implements middleware.StatsSource.
func (st *stage) Stats() []middleware.Stat {
	st.usage.roll(st.period)
	accounts, _, _, _ := st.usage.list()
	var over int64
	for _, a := range accounts {
		if st.over(a.used()) {
			over++
		}
	}
	return []middleware.Stat{
		{Key: st.prefix + "users", Value: int64(len(accounts))},
		{Key: st.prefix + "users_over", Value: over},
		{Key: st.prefix + "refused", Value: st.usage.refused.Load()},
		{Key: st.prefix + "closed_at_limit", Value: st.usage.closed.Load()},
		{Key: st.prefix + "store_errors", Value: st.usage.storeErrors.Load()},
	}
}

// UserStats implements middleware.UserStatsSource: the user's bytes this
// period, the quota and what is left.
func (st *stage) UserStats(user string) ([]middleware.Stat, bool) {
	st.usage.roll(st.period)
	st.usage.ensureLoaded()
	a, _ := st.usage.account(user)
	used := a.used()
	out := []middleware.Stat{
		{Key: st.prefix + "used_bytes", Value: used},
		{Key: st.prefix + "limit_bytes", Value: st.limit},
	}
	if st.limit > 0 {
		out = append(out, middleware.Stat{Key: st.prefix + "left_bytes", Value: max(0, st.limit-used)})
	}
	return out, true
}

// over reports whether a user who moved used bytes is at the quota.
func (st *stage) over(used int64) bool { return st.limit > 0 && used >= st.limit }

// Quotas implements middleware.QuotaKeeper: every user with a count this
// period, by name.
func (st *stage) Quotas() []middleware.QuotaUsage {
	st.usage.roll(st.period)
	st.usage.ensureLoaded()
	accounts, _, next, id := st.usage.list()
	out := make([]middleware.QuotaUsage, 0, len(accounts))
	for _, a := range accounts {
		used := a.used()
		if used == 0 {
			continue
		}
		out = append(out, middleware.QuotaUsage{User: a.user, Used: used, Limit: st.limit, Period: id, Resets: next})
	}
	return out
}

// ResetQuota implements middleware.QuotaKeeper: the user's count this
// period goes back to 0, in the state store too.
func (st *stage) ResetQuota(user string) (bool, error) {
	st.usage.roll(st.period)
	return st.usage.reset(user)
}

// Settings implements middleware.Tunable: the quota, the period and the
// time zone may change live; the counts are kept (a new period or zone
// starts a new count).
func (st *stage) Settings() []middleware.Setting {
	return []middleware.Setting{
		{Key: "per_user", Value: strconv.FormatInt(st.limit, 10), Help: "bytes a user may move per period, both directions (0: count only)"},
		{Key: "period", Value: st.cfg.Period, Help: "day, week, month or total"},
		{Key: "time_zone", Value: st.cfg.TimeZone, Help: "IANA time zone whose midnights start the periods"},
	}
}
