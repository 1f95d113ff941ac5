package filter

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

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
type PortSpec string

// UnmarshalJSON accepts a number or a string; New validates it.
func (ps *PortSpec) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*ps = PortSpec(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%s is not a port or a port range", b)
	}
	*ps = PortSpec(n.String())
	return nil
}

// The list keys of a rule, in the order Items prints them.
const (
	keyDest = iota
	keyPorts
	keyCommands
	keyUsers
	keyRoles
	keySources
	numKeys
)

var listKeys = [numKeys]string{"dest", "ports", "commands", "users", "roles", "sources"}

// spec is a rule in canonical text: the action and each list's elements,
// normalised (lowercased names, masked prefixes). A nil list is absent.
type spec struct {
	action string
	lists  [numKeys][]string
}

// config returns the rule as the YAML shape: map[string]any with []any
// lists; single ports are ints, ranges strings.
func (sp spec) config() map[string]any {
	m := map[string]any{"action": sp.action}
	for k, list := range sp.lists {
		if list == nil {
			continue
		}
		vals := make([]any, len(list))
		for i, v := range list {
			vals[i] = v
			if k == keyPorts {
				if n, err := strconv.Atoi(v); err == nil {
					vals[i] = n
				}
			}
		}
		m[listKeys[k]] = vals
	}
	return m
}

// Bits of rule.commands and rule.roles.
const (
	bitConnect uint8 = 1 << iota
	bitBind
	bitUDP
)

const (
	bitBasic uint8 = 1 << iota
	bitAdmin
)

func commandBit(c middleware.Command) uint8 {
	switch c {
	case middleware.CmdConnect:
		return bitConnect
	case middleware.CmdBind:
		return bitBind
	case middleware.CmdUDPAssociate:
		return bitUDP
	}
	return 0
}

func roleBit(r middleware.Role) uint8 {
	switch r {
	case middleware.RoleBasic:
		return bitBasic
	case middleware.RoleAdmin:
		return bitAdmin
	}
	return 0
}

// rule is a compiled Rule; it is immutable but for its hit counter, which
// lives in the shared pool.
type rule struct {
	allow bool
	spec  spec
	text  string // spec as one line, without hits

	hasDest   bool
	hosts     []string       // exact names
	wildcards []string       // "*.x" kept as ".x": names strictly below x
	suffixes  []string       // ".x" kept as "x": x and the names below it
	prefixes  []netip.Prefix // CIDRs and addresses, unmapped and masked

	ports    []middleware.PortRange // nil: any
	commands uint8                  // 0: any
	users    []string               // nil: any
	roles    uint8                  // 0: any
	sources  []netip.Prefix         // nil: any

	hits *atomic.Int64
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
		r.allow, r.spec.action = true, "allow"
	case "deny":
		r.spec.action = "deny"
	case "":
		return nil, fmt.Errorf("%w: %s.action: required (allow or deny)", middleware.ErrBadValue, where)
	default:
		return nil, fmt.Errorf("%w: %s.action: %q is not allow or deny", middleware.ErrBadValue, where, rc.Action)
	}
	ports := make([]string, len(rc.Ports))
	for i, p := range rc.Ports {
		ports[i] = string(p)
	}
	if rc.Ports == nil {
		ports = nil
	}
	lists := [numKeys][]string{rc.Dest, ports, rc.Commands, rc.Users, rc.Roles, rc.Sources}
	for k, list := range lists {
		if list == nil {
			continue
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%w: %s.%s: empty list (leave the key out to match anything)", middleware.ErrBadValue, where, listKeys[k])
		}
		canon := make([]string, len(list))
		for i, v := range list {
			c, problem := r.add(k, v)
			if problem != "" {
				return nil, fmt.Errorf("%w: %s.%s[%d]: %q %s", middleware.ErrBadValue, where, listKeys[k], i, v, problem)
			}
			canon[i] = c
		}
		r.spec.lists[k] = canon
	}
	r.hasDest = rc.Dest != nil
	r.text = formatSpec(r.spec)
	return r, nil
}

// add compiles one element v of list k into r and returns its canonical
// text, or what is wrong with it ("is not a ...").
func (r *rule) add(k int, v string) (string, string) {
	switch k {
	case keyDest:
		return r.addDest(v)
	case keyPorts:
		pr, canon, ok := parsePorts(v)
		if !ok {
			return "", "is not a port (0-65535) or a range (low-high)"
		}
		r.ports = append(r.ports, pr)
		return canon, ""
	case keyCommands:
		c := strings.ToLower(v)
		switch c {
		case "connect":
			r.commands |= bitConnect
		case "bind":
			r.commands |= bitBind
		case "udp":
			r.commands |= bitUDP
		default:
			return "", "is not a command (connect, bind, udp)"
		}
		return c, ""
	case keyUsers:
		if v == "" || len(v) > 255 {
			return "", "is not a user name (1-255 octets)"
		}
		r.users = append(r.users, v)
		return v, ""
	case keyRoles:
		role, err := middleware.ParseRole(v)
		if err != nil {
			return "", "is not a role (basic, admin)"
		}
		r.roles |= roleBit(role)
		return strings.ToLower(v), ""
	case keySources:
		p, canon, ok := parseNet(v)
		if !ok {
			return "", "is not a CIDR or an IP address"
		}
		r.sources = append(r.sources, p)
		return canon, ""
	}
	return "", "is not known"
}

func (r *rule) addDest(v string) (string, string) {
	if p, canon, ok := parseNet(v); ok {
		r.prefixes = append(r.prefixes, p)
		return canon, ""
	}
	const bad = "is not a CIDR, IP, host name or wildcard"
	name := normName(v)
	switch {
	case strings.HasPrefix(name, "*."):
		if !validName(name[2:]) {
			return "", bad
		}
		r.wildcards = append(r.wildcards, name[1:])
	case strings.HasPrefix(name, "."):
		if !validName(name[1:]) {
			return "", bad
		}
		r.suffixes = append(r.suffixes, name[1:])
	default:
		if !validName(name) {
			return "", bad
		}
		r.hosts = append(r.hosts, name)
	}
	return name, ""
}

// parseNet parses a CIDR or a single address into a prefix that matches
// unmapped addresses, and its canonical text.
func parseNet(v string) (netip.Prefix, string, bool) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, "", false
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		return p, p.String(), true
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, "", false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), a.String(), true
}

// parsePorts parses "443" or "1-1023" (middleware.ParsePortRange) and
// returns its canonical text.
func parsePorts(v string) (middleware.PortRange, string, bool) {
	pr, err := middleware.ParsePortRange(v)
	if err != nil {
		return middleware.PortRange{}, "", false
	}
	return pr, pr.String(), true
}

// normName lowercases a host name and drops one trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// validName reports whether s (lowercased) is a host name: dot-separated
// labels of 1-63 letters, digits, '-' or '_', not starting or ending with
// '-', at most 253 octets, and a last label that is not all digits (so a
// malformed address such as 300.0.0.0 is not taken for a name).
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// query is one request as the rules see it.
type query struct {
	cmd    middleware.Command
	user   string
	role   middleware.Role
	client netip.Addr // unmapped; invalid when unknown
	port   uint16
	name   string     // normalised; "" when the destination is an address
	addr   netip.Addr // unmapped, without zone; invalid when not known
}

// queryOf describes a request by s for dest. A name that is an IP literal
// is taken as the address.
func queryOf(s *middleware.Session, cmd middleware.Command, dest middleware.Target) query {
	q := query{cmd: cmd, port: dest.Port}
	if s != nil {
		q.user, q.role = s.User, s.Role
		if s.Client.IsValid() {
			q.client = s.Client.Addr().Unmap()
		}
	}
	switch {
	case dest.Addr.IsValid():
		q.addr = normAddr(dest.Addr)
	case dest.Name != "":
		if a, err := netip.ParseAddr(dest.Name); err == nil {
			q.addr = normAddr(a)
		} else {
			q.name = normName(dest.Name)
		}
	}
	return q
}

func normAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// How a rule matched a query.
type how uint8

const (
	noMatch   how = iota
	matchAny      // the rule has no dest
	matchName     // by a host, wildcard or suffix entry only
	matchAddr     // by a CIDR or address entry
	maybeAddr     // name known, address not yet: only the CIDRs could match
)

func (r *rule) match(q *query) how {
	if !r.others(q) {
		return noMatch
	}
	if !r.hasDest {
		return matchAny
	}
	if q.addr.IsValid() {
		for _, p := range r.prefixes {
			if p.Contains(q.addr) {
				return matchAddr
			}
		}
	}
	if q.name != "" {
		if r.nameMatches(q.name) {
			return matchName
		}
		if !q.addr.IsValid() && len(r.prefixes) > 0 {
			return maybeAddr
		}
	}
	return noMatch
}

// others matches every matcher but dest.
func (r *rule) others(q *query) bool {
	if r.commands != 0 && r.commands&commandBit(q.cmd) == 0 {
		return false
	}
	if r.roles != 0 && r.roles&roleBit(q.role) == 0 {
		return false
	}
	if r.users != nil && !slices.Contains(r.users, q.user) {
		return false
	}
	if r.ports != nil && !slices.ContainsFunc(r.ports, func(pr middleware.PortRange) bool { return pr.Contains(q.port) }) {
		return false
	}
	if r.sources != nil && !slices.ContainsFunc(r.sources, func(p netip.Prefix) bool { return p.Contains(q.client) }) {
		return false
	}
	return true
}

func (r *rule) nameMatches(name string) bool {
	if slices.Contains(r.hosts, name) {
		return true
	}
	for _, w := range r.wildcards { // ".x"
		if len(name) > len(w) && strings.HasSuffix(name, w) {
			return true
		}
	}
	for _, s := range r.suffixes { // "x"
		if name == s || strings.HasSuffix(name, s) && name[len(name)-len(s)-1] == '.' {
			return true
		}
	}
	return false
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
		switch r.match(q) {
		case noMatch, maybeAddr:
			continue
		case matchName:
			if r.allow && q.addr.IsValid() {
				for j := i + 1; j < len(p.rules); j++ {
					if p.rules[j].match(q) == matchAddr {
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
	if q.name == "" || len(addrs) == 0 {
		ok, i := p.decide(&q)
		return verdict{allow: ok, rule: i}
	}
	v := verdict{rule: -2}
	for _, a := range addrs {
		q.addr = normAddr(a)
		ok, i := p.decide(&q)
		if !ok {
			return verdict{allow: false, rule: i, addr: q.addr}
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
		switch r.match(q) {
		case noMatch:
			continue
		case maybeAddr:
			if r.allow {
				return false, 0
			}
			continue
		}
		return !r.allow, i
	}
	return !p.allow, -1
}
