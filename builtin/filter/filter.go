// Package filter is the "filter" stage: a destination policy. Ordered
// allow/deny rules match on destination (CIDR, host, wildcard, domain
// suffix), port, command, user, role and client address; the first match
// wins, and a default action applies when none does. The stage wraps the
// Session's Dialer: a refused destination gets SOCKS reply 0x02. A name is
// checked, then resolved, and every address it resolves to is checked
// before any is dialed, so a name that resolves into a denied network (DNS
// rebinding to 127.0.0.1, say) is refused.
package filter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "filter"

// RulesKey is the configuration key of the rules list, the key of
// middleware.Editable.
const RulesKey = "rules"

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "destination policy: ordered allow/deny rules on destination, port, command, user, role and client address",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Default is the action when no rule matches: allow or deny.
	Default string `json:"default"`
	// Rules are tried in order; the first that matches decides. Each entry
	// is decoded strictly into a Rule, so errors name the rule's index
	// (rules[2]) and its known keys.
	Rules []map[string]any `json:"rules"`
}

// DefaultConfig returns the configuration used for absent keys: no rules,
// everything allowed.
func DefaultConfig() Config { return Config{Default: "allow"} }

// Resolver looks up the addresses of a host name; *net.Resolver satisfies
// it. network is "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// counters is the state that outlives a rebuild: decisions and per-rule
// hits, the latter keyed by the rule's text (and its occurrence among
// identical rules), so that hits follow a rule when others are inserted or
// deleted around it.
type counters struct {
	allowed, denied atomic.Int64

	mu   sync.Mutex
	hits map[string]*atomic.Int64
}

func newCounters() *counters { return &counters{hits: map[string]*atomic.Int64{}} }

func (c *counters) hitCounter(key string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hits[key]
	if !ok {
		h = new(atomic.Int64)
		c.hits[key] = h
	}
	return h
}

// stage is immutable after New.
type stage struct {
	name     string
	policy   policy
	resolver Resolver
	state    *counters
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
	_ middleware.Tunable     = (*stage)(nil)
	_ middleware.Editable    = (*stage)(nil)
	_ middleware.Policy      = (*stage)(nil)
	_ middleware.Purposeful  = (*stage)(nil)
)

// New builds the stage from p, resolving names with net.DefaultResolver.
// It is registered as the "filter" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	return NewWithResolver(p, net.DefaultResolver)
}

// NewWithResolver is New with the resolver used for destination names.
func NewWithResolver(p middleware.Params, r Resolver) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if r == nil {
		r = net.DefaultResolver
	}
	st := &stage{name: p.Name, resolver: r}
	switch strings.ToLower(cfg.Default) {
	case "allow":
		st.policy.allow = true
	case "deny":
	default:
		return nil, fmt.Errorf("%w: key %q: %q is not allow or deny", middleware.ErrBadValue, "default", cfg.Default)
	}
	rules := make([]*rule, len(cfg.Rules))
	for i, m := range cfg.Rules {
		r, err := compileRule("rules["+strconv.Itoa(i)+"]", m)
		if err != nil {
			return nil, err
		}
		rules[i] = r
	}
	if p.Shared == nil {
		p.Shared = middleware.NewShared()
	}
	st.state = middleware.Get(p.Shared, p.Name, newCounters)
	seen := map[string]int{}
	for _, r := range rules {
		seen[r.text]++
		r.hits = st.state.hitCounter(r.text + "#" + strconv.Itoa(seen[r.text]))
	}
	st.policy.rules = rules
	return st, nil
}

// Wrap installs the policy dialer before next. It keeps the Session: the
// terminal handler dials after it has set the user, role and command.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		inner := s.Dialer
		if inner == nil {
			inner = &net.Dialer{}
		}
		s.Dialer = &dialer{st: st, next: inner, s: s}
		return next.ServeConn(ctx, s)
	})
}

// Allowed implements middleware.Policy, for checks that do not go through
// the Dialer (UDP datagrams, BIND peers), in the dialer's order. A name
// with resolved empty is the check before the lookup: it is refused only
// when it is refused whatever it resolves to, and then counted; otherwise
// it passes uncounted, to be decided with its addresses. A name with
// resolved is decided for each address, and any refusal refuses; every
// such decision counts in the statistics, as does an address's.
func (st *stage) Allowed(s *middleware.Session, cmd middleware.Command, dest middleware.Target, resolved []netip.Addr) (bool, int) {
	q := queryOf(s, cmd, dest)
	if q.Name != "" && len(resolved) == 0 {
		denied, rule := st.policy.deniedName(&q)
		if !denied {
			return true, -1
		}
		st.record(false, rule)
		return false, rule
	}
	v := st.policy.allowed(q, resolved)
	st.record(v.allow, v.rule)
	return v.allow, v.rule
}

// record counts a decision.
func (st *stage) record(allow bool, rule int) {
	if allow {
		st.state.allowed.Add(1)
	} else {
		st.state.denied.Add(1)
	}
	if rule >= 0 {
		st.policy.rules[rule].hits.Add(1)
	}
}

// Stats implements middleware.StatsSource: <name>_denied and
// <name>_allowed (filter_denied, filter_allowed for a stage named filter)
// count the decisions since start-up.
func (st *stage) Stats() []middleware.Stat {
	return []middleware.Stat{
		{Key: st.name + "_denied", Value: st.state.denied.Load()},
		{Key: st.name + "_allowed", Value: st.state.allowed.Load()},
	}
}

// Settings implements middleware.Tunable: the default action.
func (st *stage) Settings() []middleware.Setting {
	def := "deny"
	if st.policy.allow {
		def = "allow"
	}
	return []middleware.Setting{{Key: "default", Value: def, Help: "action when no rule matches: allow or deny"}}
}

// Purpose implements middleware.Purposeful: the rules list is the
// destination policy (PCTP's RULES without a stage name).
func (st *stage) Purpose(p middleware.Purpose) (string, bool) {
	return RulesKey, p == middleware.PurposeRules || p == middleware.PurposePolicy
}

// Items implements middleware.Editable for the key "rules": one line per
// rule, in order, in the one-line syntax, ending with the rule's hits.
func (st *stage) Items(key string) ([]string, bool) {
	if key != RulesKey {
		return nil, false
	}
	items := make([]string, len(st.policy.rules))
	for i, r := range st.policy.rules {
		items[i] = r.text + " " + keyHits + "=" + strconv.FormatInt(r.hits.Load(), 10)
	}
	return items, true
}

// ParseItem implements middleware.Editable for the key "rules": it parses
// a rule in the one-line syntax (hits= is ignored), validates it, and
// returns it in the shape of a YAML rule entry, normalised.
func (st *stage) ParseItem(key, text string) (any, error) {
	if key != RulesKey {
		return nil, fmt.Errorf("%w %q (editable: %s)", middleware.ErrUnknownKey, key, RulesKey)
	}
	m, err := parseRule(text)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// parseRule parses and validates one rule line into its normalised YAML
// shape.
func parseRule(text string) (map[string]any, error) {
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
