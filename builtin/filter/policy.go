package filter

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/socks5d/socks5d/builtin/internal/match"
	"github.com/socks5d/socks5d/middleware"
)

// Rule is one entry of the rules list, as written in the YAML file. Every
// matcher is optional (absent matches anything); within a list any element
// matches; all the matchers present must match.
type Rule struct {
	// Action is allow or deny (required).
	Action string `json:"action"`
	// Dest lists destinations: CIDRs ("10.0.0.0/8"), addresses ("::1"),
	// exact host names ("localhost"), wildcards ("*.internal": names
	// below internal) and domain suffixes (".corp.example": corp.example
	// and the names below it).
	Dest []string `json:"dest"`
	// Ports lists destination ports (443) and ranges ("1-1023").
	Ports []PortSpec `json:"ports"`
	// Commands lists SOCKS commands: connect, bind, udp.
	Commands []string `json:"commands"`
	// Users lists authenticated user names; anonymous clients match none.
	Users []string `json:"users"`
	// Roles lists user roles: basic, admin; anonymous clients match none.
	Roles []string `json:"roles"`
	// Sources lists client address CIDRs or addresses.
	Sources []string `json:"sources"`
}

// PortSpec is one element of a rule's ports: a port number or a string
// holding a number or a range "low-high".
type PortSpec = match.PortSpec

// rule is a compiled Rule; it is immutable but for its hit counter, which
// lives in the shared pool.
type rule struct {
	allow  bool
	action string // allow or deny
	*match.Matcher
	text string // the rule as one line, without hits

	hits *atomic.Int64
}

// config returns the rule as the YAML shape: map[string]any with []any
// lists; single ports are ints, ranges strings.
func (r *rule) config() map[string]any {
	m := map[string]any{"action": r.action}
	r.Lists.Config(m)
	return m
}

// compileRule decodes and validates one rule; where names it in errors
// ("rules[2]").
func compileRule(where string, m map[string]any) (*rule, error) {
	var rc Rule
	if err := middleware.Decode(m, &rc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	r := &rule{}
	switch strings.ToLower(rc.Action) {
	case "allow":
		r.allow, r.action = true, "allow"
	case "deny":
		r.action = "deny"
	case "":
		return nil, fmt.Errorf("%w: %s.action: required (allow or deny)", middleware.ErrBadValue, where)
	default:
		return nil, fmt.Errorf("%w: %s.action: %q is not allow or deny", middleware.ErrBadValue, where, rc.Action)
	}
	mt, err := match.Compile(where, match.Lists{rc.Dest, match.Strings(rc.Ports), rc.Commands, rc.Users, rc.Roles, rc.Sources})
	if err != nil {
		return nil, err
	}
	r.Matcher = mt
	r.text = formatRule(r)
	return r, nil
}

// query is one request as the rules see it.
type query = match.Query

// queryOf describes a request by s for dest.
func queryOf(s *middleware.Session, cmd middleware.Command, dest middleware.Target) query {
	return match.QueryOf(s, cmd, dest)
}

// policy is the compiled rules list and default action; it is immutable.
type policy struct {
	rules []*rule
	allow bool // the default
}

// verdict is a decision: the action, the deciding rule (-1: the default)
// and, for a name, the address that decided a refusal.
type verdict struct {
	allow bool
	rule  int
	addr  netip.Addr
}

// decide applies the rules to q, first match wins. An allow that matched
// only by name does not vouch for the address it resolved to: the first
// later rule that matches the address by CIDR decides instead, so a name
// allowed by "*.example.com" cannot reach loopback denied further down
// (DNS rebinding).
func (p *policy) decide(q *query) (bool, int) {
	for i, r := range p.rules {
		switch r.Match(q) {
		case match.NoMatch, match.MaybeAddr:
			continue
		case match.MatchName:
			if r.allow && q.Addr.IsValid() {
				for j := i + 1; j < len(p.rules); j++ {
					if p.rules[j].Match(q) == match.MatchAddr {
						return p.rules[j].allow, j
					}
				}
			}
		}
		return r.allow, i
	}
	return p.allow, -1
}

// allowed decides q for every address of addrs (q's name resolved); it is
// refused if any address is. With no addresses, or when q is an address,
// q is decided alone.
func (p *policy) allowed(q query, addrs []netip.Addr) verdict {
	if q.Name == "" || len(addrs) == 0 {
		ok, i := p.decide(&q)
		return verdict{allow: ok, rule: i}
	}
	v := verdict{rule: -2}
	for _, a := range addrs {
		q.Addr = match.NormAddr(a)
		ok, i := p.decide(&q)
		if !ok {
			return verdict{allow: false, rule: i, addr: q.Addr}
		}
		if v.rule == -2 {
			v = verdict{allow: true, rule: i}
		}
	}
	return v
}

// deniedName reports whether a request for q's name is refused whatever
// the name resolves to, and by which rule, so that it is refused without
// asking DNS. It is false whenever an address could change the outcome: an
// allow rule that could match by address comes first. A deny rule that
// could match by address is passed over, as it can only refuse too; the
// rule reported is then the one that refuses by name.
func (p *policy) deniedName(q *query) (bool, int) {
	for i, r := range p.rules {
		switch r.Match(q) {
		case match.NoMatch:
			continue
		case match.MaybeAddr:
			if r.allow {
				return false, 0
			}
			continue
		}
		return !r.allow, i
	}
	return !p.allow, -1
}
