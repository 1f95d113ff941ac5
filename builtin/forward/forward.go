// Package forward is the "forward" stage: egress control. Ordered rules,
// with the filter stage's matchers, choose how a connection leaves: straight
// to the destination (the default), through a chain of upstream proxies
// (SOCKS5 through golang.org/x/net/proxy, HTTP CONNECT), and from which
// local address or interface. The first rule that matches decides. A rule
// may name a fallback egress for when its own cannot connect. The stage
// wraps the Session's Dialer; it comes before any filter stage in the
// chain, so that the destination policy decides first.
package forward

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socks5d/socks5d/builtin/internal/match"
	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "forward"

// RulesKey is the configuration key of the rules list, the key of
// middleware.Editable.
const RulesKey = "rules"

func init() {
	middleware.Register(middleware.Info{
		Type:   Type,
		New:    New,
		Before: []string{"filter"},
		Doc:    "egress: ordered rules send connections direct, through upstream SOCKS5/HTTP proxies, or from a local address or interface",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Rules are tried in order; the first that matches decides. None
	// matching: direct.
	Rules []map[string]any `json:"rules"`
	// ConnectTimeout bounds an attempt through a rule's own egress when
	// the rule has a fallback; the fallback gets what is left of the
	// engine's socks.connect_timeout.
	ConnectTimeout middleware.Duration `json:"connect_timeout"`
	// Failures in a row after which an upstream is skipped for Backoff
	// (0: never skipped).
	Failures int                 `json:"failures"`
	Backoff  middleware.Duration `json:"backoff"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config {
	return Config{ConnectTimeout: middleware.Duration(5 * time.Second), Failures: 3, Backoff: middleware.Duration(30 * time.Second)}
}

// stage is immutable after New.
type stage struct {
	name    string
	rules   []*rule
	timeout time.Duration
	limit   int
	backoff time.Duration
	state   *state
	now     func() time.Time
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
	_ middleware.Tunable     = (*stage)(nil)
	_ middleware.Editable    = (*stage)(nil)
	_ middleware.Purposeful  = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "forward" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	st := &stage{name: p.Name, timeout: time.Duration(cfg.ConnectTimeout), limit: cfg.Failures, backoff: time.Duration(cfg.Backoff), now: time.Now}
	if st.timeout < 100*time.Millisecond || st.timeout > 10*time.Minute {
		return nil, fmt.Errorf("%w: key %q: %s is out of range 100ms..10m", middleware.ErrBadValue, "connect_timeout", st.timeout)
	}
	if st.limit < 0 || st.limit > 1000 {
		return nil, fmt.Errorf("%w: key %q: %d is out of range 0..1000", middleware.ErrBadValue, "failures", st.limit)
	}
	if st.backoff < 0 || st.backoff > 24*time.Hour {
		return nil, fmt.Errorf("%w: key %q: %s is out of range 0s..24h", middleware.ErrBadValue, "backoff", st.backoff)
	}
	for i, m := range cfg.Rules {
		r, err := compileRule("rules["+strconv.Itoa(i)+"]", m)
		if err != nil {
			return nil, err
		}
		st.rules = append(st.rules, r)
	}
	if p.Shared == nil {
		p.Shared = middleware.NewShared()
	}
	st.state = middleware.Get(p.Shared, p.Name, newState)
	return st, nil
}

// direct is the egress when no rule matches.
var direct = &egress{label: "direct"}

// choose returns the rule for q (nil: none matched, direct). A rule whose
// dest could only match the address of a name not yet resolved does not
// match.
func (st *stage) choose(q *match.Query) *rule {
	for _, r := range st.rules {
		switch r.Match(q) {
		case match.MatchAny, match.MatchName, match.MatchAddr:
			return r
		}
	}
	return nil
}

// Wrap installs the egress dialer, and an admission that refuses BIND and
// UDP ASSOCIATE through an upstream, before next.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Dialer = &dialer{st: st, next: s.Dialer, s: s}
		s.Admissions = append(s.Admissions, admission{st})
		return next.ServeConn(ctx, s)
	})
}

// admission refuses a BIND or UDP ASSOCIATE whose rule sends it through an
// upstream proxy: this stage relays neither through one.
type admission struct{ st *stage }

// Admit implements middleware.Admission.
func (a admission) Admit(_ context.Context, s *middleware.Session) error {
	if s.Command != middleware.CmdBind && s.Command != middleware.CmdUDPAssociate {
		return nil
	}
	q := match.QueryOf(s, s.Command, s.Target)
	r := a.st.choose(&q)
	if r == nil || len(r.egress.hops) == 0 {
		return nil
	}
	a.st.state.refused.Add(1)
	if s.Logger != nil {
		s.Logger.Info("command refused: its egress is an upstream proxy, which this server does not relay BIND or UDP through",
			"command", s.Command.String(), "egress", r.egress.label)
	}
	return &middleware.ReplyError{Code: middleware.ReplyCommandUnsupported, Err: fmt.Errorf("%w: %s", ErrCommand, s.Command)}
}

// Stats implements middleware.StatsSource: connections that left direct
// (<name>_direct) and through upstreams (<name>_via), fallbacks used,
// BIND/UDP refused; then, for each upstream of the rules,
// <name>_upstream_<host>_<port>_connects, _failures and _skipped.
func (st *stage) Stats() []middleware.Stat {
	out := []middleware.Stat{
		{Key: st.name + "_direct", Value: st.state.direct.Load()},
		{Key: st.name + "_via", Value: st.state.via.Load()},
		{Key: st.name + "_fallbacks", Value: st.state.fallbacks.Load()},
		{Key: st.name + "_refused", Value: st.state.refused.Load()},
	}
	seen := map[string]string{}
	for _, r := range st.rules {
		for _, eg := range []*egress{r.egress, r.fallback} {
			if eg == nil {
				continue
			}
			for _, h := range eg.hops {
				seen[statName(h)] = h.key
			}
		}
	}
	for _, name := range slices.Sorted(mapsKeys(seen)) {
		h := st.state.health(seen[name])
		prefix := st.name + "_upstream_" + name
		out = append(out,
			middleware.Stat{Key: prefix + "_connects", Value: h.connects.Load()},
			middleware.Stat{Key: prefix + "_failures", Value: h.failures.Load()},
			middleware.Stat{Key: prefix + "_skipped", Value: h.skipped.Load()},
		)
	}
	return out
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// statName names an upstream in STATS keys: scheme, host and port, with
// every character but letters, digits, '.' and '-' written '_'
// (socks5_127.0.0.1_1081).
func statName(h *upstream) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, h.scheme+"_"+h.host)
}

// Settings implements middleware.Tunable.
func (st *stage) Settings() []middleware.Setting {
	return []middleware.Setting{
		{Key: "connect_timeout", Value: st.timeout.String(), Help: "time a rule's own egress gets before its fallback is tried"},
		{Key: "failures", Value: strconv.Itoa(st.limit), Help: "failures in a row after which an upstream is skipped for backoff (0: never)"},
		{Key: "backoff", Value: st.backoff.String(), Help: "how long an upstream that keeps failing is skipped"},
	}
}

// Purpose implements middleware.Purposeful: the rules are a rules list
// (PCTP's RULES forward).
func (st *stage) Purpose(p middleware.Purpose) (string, bool) {
	return RulesKey, p == middleware.PurposeRules
}

// Items implements middleware.Editable for the key "rules": one line per
// rule, passwords masked.
func (st *stage) Items(key string) ([]string, bool) {
	if key != RulesKey {
		return nil, false
	}
	items := make([]string, len(st.rules))
	for i, r := range st.rules {
		items[i] = r.line()
	}
	return items, true
}

// ParseItem implements middleware.Editable for the key "rules": it parses
// and checks a rule line and returns it in the shape of a YAML rule entry,
// passwords as given (they are kept in the state file, which only the
// server's user can read).
func (st *stage) ParseItem(key, text string) (any, error) {
	if key != RulesKey {
		return nil, fmt.Errorf("%w %q (editable: %s)", middleware.ErrUnknownKey, key, RulesKey)
	}
	m, err := parseLine(text)
	if err != nil {
		return nil, err
	}
	r, err := compileRule("rule", m)
	if err != nil {
		return nil, err
	}
	return r.config(), nil
}

// dialTarget describes the destination of a dial of address by s: the
// client's name, when the client sent one and address is one of its
// resolved addresses, and the address.
func dialTarget(s *middleware.Session, address string) (match.Query, bool) {
	host, portText, ok := strings.Cut(address, ":")
	if i := strings.LastIndexByte(address, ':'); i >= 0 {
		host, portText, ok = strings.Trim(address[:i], "[]"), address[i+1:], true
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if !ok || err != nil || host == "" {
		return match.Query{}, false
	}
	q := match.QueryOf(s, s.Command, middleware.Target{Name: host, Port: uint16(port)})
	if q.Addr.IsValid() && s.Target.Name != "" {
		if _, err := netip.ParseAddr(s.Target.Name); err != nil {
			q.Name = match.NormName(s.Target.Name) // the name the client asked, resolved by a policy
		}
	}
	return q, true
}
