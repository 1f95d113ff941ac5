// Package match is the rule matchers that the filter and forward stages
// share: dest, ports, commands, users, roles and sources, their YAML and
// one-line forms, and how a request is matched against them.
package match

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// The matcher keys, in the order lines print them.
const (
	Dest = iota
	Ports
	Commands
	Users
	Roles
	Sources
	NumKeys
)

// Keys are the matchers' names, indexed by Dest, Ports, ...
var Keys = [NumKeys]string{"dest", "ports", "commands", "users", "roles", "sources"}

// IsKey reports whether k is a matcher's name.
func IsKey(k string) bool { return slices.Contains(Keys[:], k) }

// PortSpec is one element of a rule's ports: a port number or a string
// holding a number or a range "low-high".
type PortSpec string

// UnmarshalJSON accepts a number or a string; Compile validates it.
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

// Strings returns ports as strings, nil for nil.
func Strings(ports []PortSpec) []string {
	if ports == nil {
		return nil
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = string(p)
	}
	return out
}

// Lists are a rule's matchers, one list per key (indexed by Dest, Ports,
// ...), nil when the key is absent.
type Lists [NumKeys][]string

// Config adds the lists to m in their YAML shape: []any lists; single
// ports are ints, ranges strings.
func (l Lists) Config(m map[string]any) {
	for k, list := range l {
		if list == nil {
			continue
		}
		vals := make([]any, len(list))
		for i, v := range list {
			vals[i] = v
			if k == Ports {
				if n, err := strconv.Atoi(v); err == nil {
					vals[i] = n
				}
			}
		}
		m[Keys[k]] = vals
	}
}

// Format writes the lists as " key=v1,v2" fields of the one-line syntax.
func (l Lists) Format(b *strings.Builder) {
	for k, list := range l {
		if list != nil {
			WriteField(b, Keys[k], list)
		}
	}
}

// Bits of Matcher.commands and Matcher.roles.
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

// Matcher is a rule's compiled matchers; it is immutable.
type Matcher struct {
	// Lists are the matchers in canonical text: lowercased names, masked
	// prefixes.
	Lists Lists

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
}

// Compile validates lists; where names the rule in errors ("rules[2]").
func Compile(where string, lists Lists) (*Matcher, error) {
	m := &Matcher{}
	for k, list := range lists {
		if list == nil {
			continue
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%w: %s.%s: empty list (leave the key out to match anything)", middleware.ErrBadValue, where, Keys[k])
		}
		canon := make([]string, len(list))
		for i, v := range list {
			c, problem := m.add(k, v)
			if problem != "" {
				return nil, fmt.Errorf("%w: %s.%s[%d]: %q %s", middleware.ErrBadValue, where, Keys[k], i, v, problem)
			}
			canon[i] = c
		}
		m.Lists[k] = canon
	}
	m.hasDest = lists[Dest] != nil
	return m, nil
}

// add compiles one element v of list k into m and returns its canonical
// text, or what is wrong with it ("is not a ...").
func (m *Matcher) add(k int, v string) (string, string) {
	switch k {
	case Dest:
		return m.addDest(v)
	case Ports:
		pr, canon, ok := parsePorts(v)
		if !ok {
			return "", "is not a port (0-65535) or a range (low-high)"
		}
		m.ports = append(m.ports, pr)
		return canon, ""
	case Commands:
		c := strings.ToLower(v)
		switch c {
		case "connect":
			m.commands |= bitConnect
		case "bind":
			m.commands |= bitBind
		case "udp":
			m.commands |= bitUDP
		default:
			return "", "is not a command (connect, bind, udp)"
		}
		return c, ""
	case Users:
		if v == "" || len(v) > 255 {
			return "", "is not a user name (1-255 octets)"
		}
		m.users = append(m.users, v)
		return v, ""
	case Roles:
		role, err := middleware.ParseRole(v)
		if err != nil {
			return "", "is not a role (basic, admin)"
		}
		m.roles |= roleBit(role)
		return strings.ToLower(v), ""
	case Sources:
		p, canon, ok := ParseNet(v)
		if !ok {
			return "", "is not a CIDR or an IP address"
		}
		m.sources = append(m.sources, p)
		return canon, ""
	}
	return "", "is not known"
}

func (m *Matcher) addDest(v string) (string, string) {
	if p, canon, ok := ParseNet(v); ok {
		m.prefixes = append(m.prefixes, p)
		return canon, ""
	}
	const bad = "is not a CIDR, IP, host name or wildcard"
	name := NormName(v)
	switch {
	case strings.HasPrefix(name, "*."):
		if !ValidName(name[2:]) {
			return "", bad
		}
		m.wildcards = append(m.wildcards, name[1:])
	case strings.HasPrefix(name, "."):
		if !ValidName(name[1:]) {
			return "", bad
		}
		m.suffixes = append(m.suffixes, name[1:])
	default:
		if !ValidName(name) {
			return "", bad
		}
		m.hosts = append(m.hosts, name)
	}
	return name, ""
}

// ParseNet parses a CIDR or a single address into a prefix that matches
// unmapped addresses, and its canonical text.
func ParseNet(v string) (netip.Prefix, string, bool) {
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

// parsePorts parses "443" or "1-1023" (middleware.ParsePortRange, the one
// port-range reader) and returns its canonical text.
func parsePorts(v string) (middleware.PortRange, string, bool) {
	pr, err := middleware.ParsePortRange(v)
	if err != nil {
		return middleware.PortRange{}, "", false
	}
	return pr, pr.String(), true
}

// NormName lowercases a host name and drops one trailing dot.
func NormName(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// ValidName reports whether s (lowercased) is a host name: dot-separated
// labels of 1-63 letters, digits, '-' or '_', not starting or ending with
// '-', at most 253 octets, and a last label that is not all digits (so a
// malformed address such as 300.0.0.0 is not taken for a name).
func ValidName(s string) bool {
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

// Query is one request as the rules see it.
type Query struct {
	Cmd    middleware.Command
	User   string
	Role   middleware.Role
	Client netip.Addr // unmapped; invalid when unknown
	Port   uint16
	Name   string     // normalised; "" when the destination is an address
	Addr   netip.Addr // unmapped, without zone; invalid when not known
}

// QueryOf describes a request by s for dest. A name that is an IP literal
// is taken as the address.
func QueryOf(s *middleware.Session, cmd middleware.Command, dest middleware.Target) Query {
	q := Query{Cmd: cmd, Port: dest.Port}
	if s != nil {
		q.User, q.Role = s.User, s.Role
		if s.Client.IsValid() {
			q.Client = s.Client.Addr().Unmap()
		}
	}
	switch {
	case dest.Addr.IsValid():
		q.Addr = NormAddr(dest.Addr)
	case dest.Name != "":
		if a, err := netip.ParseAddr(dest.Name); err == nil {
			q.Addr = NormAddr(a)
		} else {
			q.Name = NormName(dest.Name)
		}
	}
	return q
}

// NormAddr unmaps a and drops its zone.
func NormAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// How says how a rule matched a query.
type How uint8

// The ways of matching.
const (
	NoMatch   How = iota
	MatchAny      // the rule has no dest
	MatchName     // by a host, wildcard or suffix entry only
	MatchAddr     // by a CIDR or address entry
	MaybeAddr     // name known, address not yet: only the CIDRs could match
)

// Match matches q.
func (m *Matcher) Match(q *Query) How {
	if !m.others(q) {
		return NoMatch
	}
	if !m.hasDest {
		return MatchAny
	}
	if q.Addr.IsValid() {
		for _, p := range m.prefixes {
			if p.Contains(q.Addr) {
				return MatchAddr
			}
		}
	}
	if q.Name != "" {
		if m.nameMatches(q.Name) {
			return MatchName
		}
		if !q.Addr.IsValid() && len(m.prefixes) > 0 {
			return MaybeAddr
		}
	}
	return NoMatch
}

// others matches every matcher but dest.
func (m *Matcher) others(q *Query) bool {
	if m.commands != 0 && m.commands&commandBit(q.Cmd) == 0 {
		return false
	}
	if m.roles != 0 && m.roles&roleBit(q.Role) == 0 {
		return false
	}
	if m.users != nil && !slices.Contains(m.users, q.User) {
		return false
	}
	if m.ports != nil && !slices.ContainsFunc(m.ports, func(pr middleware.PortRange) bool { return pr.Contains(q.Port) }) {
		return false
	}
	if m.sources != nil && !slices.ContainsFunc(m.sources, func(p netip.Prefix) bool { return p.Contains(q.Client) }) {
		return false
	}
	return true
}

func (m *Matcher) nameMatches(name string) bool {
	if slices.Contains(m.hosts, name) {
		return true
	}
	for _, w := range m.wildcards { // ".x"
		if len(name) > len(w) && strings.HasSuffix(name, w) {
			return true
		}
	}
	for _, s := range m.suffixes { // "x"
		if name == s || strings.HasSuffix(name, s) && name[len(name)-len(s)-1] == '.' {
			return true
		}
	}
	return false
}
