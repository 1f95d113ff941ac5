package forward

import (
	"fmt"
	"strings"

	"github.com/socks5d/socks5d/builtin/internal/match"
	"github.com/socks5d/socks5d/middleware"
)

// Rule is one entry of the rules list, as written in the YAML file: the
// filter stage's matchers (every one optional; all present must match)
// and the egress of the connections it matches.
type Rule struct {
	// Dest lists destinations: CIDRs, addresses, host names, wildcards
	// ("*.internal") and domain suffixes (".corp.example"), as filter's.
	Dest []string `json:"dest"`
	// Ports lists destination ports (443) and ranges ("1-1023").
	Ports []match.PortSpec `json:"ports"`
	// Commands lists SOCKS commands: connect, bind, udp.
	Commands []string `json:"commands"`
	// Users lists authenticated user names.
	Users []string `json:"users"`
	// Roles lists user roles: basic, admin.
	Roles []string `json:"roles"`
	// Sources lists client address CIDRs or addresses.
	Sources []string `json:"sources"`

	// Direct, Via, Bind and Interface are the egress (see Egress).
	Direct    bool     `json:"direct"`
	Via       []string `json:"via"`
	Bind      string   `json:"bind"`
	Interface string   `json:"interface"`
	// Fallback is the egress used when this one cannot connect within
	// connect_timeout (or its upstream is being skipped).
	Fallback *Egress `json:"fallback"`
}

// rule is a compiled Rule; it is immutable.
type rule struct {
	*match.Matcher
	egress   *egress
	fallback *egress // nil: none
}

// compileRule decodes and validates one rule; where names it in errors.
func compileRule(where string, m map[string]any) (*rule, error) {
	var rc Rule
	if err := middleware.Decode(m, &rc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, maskErr(err, m))
	}
	mt, err := match.Compile(where, match.Lists{rc.Dest, match.Strings(rc.Ports), rc.Commands, rc.Users, rc.Roles, rc.Sources})
	if err != nil {
		return nil, err
	}
	eg, err := compileEgress(where, Egress{Direct: rc.Direct, Via: rc.Via, Bind: rc.Bind, Interface: rc.Interface})
	if err != nil {
		return nil, err
	}
	r := &rule{Matcher: mt, egress: eg}
	if rc.Fallback != nil {
		if r.fallback, err = compileEgress(where+".fallback", *rc.Fallback); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// maskErr keeps a decoding error from echoing a credential: when the
// error's text holds a password of the rule's URLs, it is replaced by a
// generic one.
func maskErr(err error, m map[string]any) error {
	text := err.Error()
	for _, pw := range passwords(m) {
		if strings.Contains(text, pw) {
			return fmt.Errorf("%w: a value holding a credential is not valid here", middleware.ErrBadValue)
		}
	}
	return err
}

// passwords returns the passwords of the URLs anywhere in v.
func passwords(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		if _, after, ok := strings.Cut(x, "://"); ok {
			if userinfo, _, ok := strings.Cut(after, "@"); ok {
				if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
					out = append(out, pw)
				}
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, passwords(e)...)
		}
	case map[string]any:
		for _, e := range x {
			out = append(out, passwords(e)...)
		}
	}
	return out
}

// config returns the rule in its YAML shape, passwords as written: what
// PCTP's edits keep in the state file.
func (r *rule) config() map[string]any {
	m := map[string]any{}
	r.Lists.Config(m)
	r.egress.config(m)
	if r.fallback != nil {
		fb := map[string]any{}
		r.fallback.config(fb)
		m["fallback"] = fb
	}
	return m
}

// The one-line syntax of a rule (PCTP's RULES <stage> and RULE ADD
// <stage>), the egress first:
//
//	direct|via=<url>,... [bind=<ip>] [interface=<name>] [matchers...] [fallback=direct|<url>,...] [fallback_bind=<ip>] [fallback_interface=<name>]
//
// Matchers are filter's: dest, ports, commands, users, roles, sources.
// Passwords are shown as ***; a line sent back must give them.
const (
	keyVia         = "via"
	keyBind        = "bind"
	keyInterface   = "interface"
	keyFallback    = "fallback"
	keyFallbackB   = "fallback_bind"
	keyFallbackI   = "fallback_interface"
	wordDirect     = "direct"
	fallbackDirect = "direct"
)

// lineKeys are the keys of a rule line, in the order errors name them.
var lineKeys = append([]string{keyVia, keyBind, keyInterface}, append(match.Keys[:len(match.Keys):len(match.Keys)], keyFallback, keyFallbackB, keyFallbackI)...)

// line writes the rule in the one-line syntax, passwords masked.
func (r *rule) line() string {
	var b strings.Builder
	writeEgress(&b, r.egress, "", true)
	r.Lists.Format(&b)
	if fb := r.fallback; fb != nil {
		writeEgress(&b, fb, "fallback_", false)
	}
	return strings.TrimPrefix(b.String(), " ")
}

// writeEgress writes eg's fields, named with prefix; main says whether it
// is the rule's own egress (direct as a word) or the fallback
// (fallback=direct or fallback=<urls>).
func writeEgress(b *strings.Builder, eg *egress, prefix string, main bool) {
	shown := make([]string, len(eg.hops))
	for i, h := range eg.hops {
		shown[i] = h.shown
	}
	switch {
	case main && len(shown) == 0:
		b.WriteString(" " + wordDirect)
	case main:
		match.WriteField(b, keyVia, shown)
	case len(shown) == 0:
		match.WriteField(b, keyFallback, []string{fallbackDirect})
	default:
		match.WriteField(b, keyFallback, shown)
	}
	if eg.bind.IsValid() {
		match.WriteField(b, prefix+keyBind, []string{eg.bind.String()})
	}
	if eg.iface != "" {
		match.WriteField(b, prefix+keyInterface, []string{eg.iface})
	}
}

// parseLine reads a rule line into its YAML shape (checked by
// compileRule).
func parseLine(text string) (map[string]any, error) {
	word, fields, err := match.ParseLine(text, lineKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuleSyntax, err)
	}
	m := map[string]any{}
	switch word {
	case "":
		if fields[keyVia] == nil && fields[keyBind] == nil && fields[keyInterface] == nil {
			return nil, fmt.Errorf("%w: want direct, via=, bind= or interface= first", ErrRuleSyntax)
		}
	case wordDirect:
		if fields[keyVia] != nil {
			return nil, fmt.Errorf("%w: direct and via= exclude each other", ErrRuleSyntax)
		}
		m["direct"] = true
	default:
		return nil, fmt.Errorf("%w: %q: a rule starts with direct or a key=value field", ErrRuleSyntax, word)
	}
	single := func(key string) (string, error) {
		vals := fields[key]
		if len(vals) != 1 {
			return "", fmt.Errorf("%w: %s= takes one value", ErrRuleSyntax, key)
		}
		return vals[0].(string), nil
	}
	var fb map[string]any
	for key, vals := range fields {
		switch key {
		case keyVia:
			m["via"] = vals
		case keyBind, keyInterface:
			v, err := single(key)
			if err != nil {
				return nil, err
			}
			m[key] = v
		case keyFallback, keyFallbackB, keyFallbackI:
			if fb == nil {
				fb = map[string]any{}
			}
			switch {
			case key == keyFallback && len(vals) == 1 && vals[0] == fallbackDirect:
				fb["direct"] = true
			case key == keyFallback:
				fb["via"] = vals
			default:
				v, err := single(key)
				if err != nil {
					return nil, err
				}
				fb[strings.TrimPrefix(key, "fallback_")] = v
			}
		default:
			m[key] = vals
		}
	}
	if fb != nil {
		m["fallback"] = fb
	}
	return m, nil
}
