package filter

import (
	"fmt"
	"strconv"
	"strings"
)

// The one-line rule syntax, used by Items and ParseItem (PCTP's RULES and
// RULE ADD):
//
//	<allow|deny> [key=v1,v2,... ...]
//
// Fields are separated by spaces or tabs; keys are dest, ports, commands,
// users, roles, sources, each at most once, in any order, plus hits, which
// Items appends and ParseItem ignores. Values are separated by commas with
// no space. A value holding a space, a tab, a comma, a double quote, '=',
// '\' or a character outside printable ASCII is written as a Go
// double-quoted string ("bob smith"), and such a string is accepted for any
// value. Example:
//
//	deny dest=127.0.0.0/8,::1/128,localhost ports=1-1023 roles=basic hits=3

const keyHits = "hits"

// formatSpec writes a rule in the one-line syntax, without hits.
func formatSpec(sp spec) string {
	var b strings.Builder
	b.WriteString(sp.action)
	for k, list := range sp.lists {
		if list == nil {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(listKeys[k])
		b.WriteByte('=')
		for i, v := range list {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quoteValue(v))
		}
	}
	return b.String()
}

// quoteValue returns v, double-quoted when it could not be read back bare.
func quoteValue(v string) string {
	if v == "" {
		return `""`
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`,"=\`, c) >= 0 {
			return strconv.Quote(v)
		}
	}
	return v
}

// parseLine reads a rule in the one-line syntax into the shape of a YAML
// rule entry (values are not validated here).
func parseLine(text string) (map[string]any, error) {
	p := lineParser{s: text}
	p.skipSpace()
	action := p.bare()
	if action == "" {
		return nil, fmt.Errorf("%w: want <allow|deny> [key=value,... ...]", ErrRuleSyntax)
	}
	m := map[string]any{"action": action}
	seen := map[string]bool{}
	for {
		if !p.skipSpace() {
			if p.done() {
				return m, nil
			}
			return nil, fmt.Errorf("%w: at %q: want a space between fields", ErrRuleSyntax, p.rest())
		}
		if p.done() {
			return m, nil
		}
		key, ok := p.key()
		if !ok {
			return nil, fmt.Errorf("%w: at %q: want key=value", ErrRuleSyntax, p.rest())
		}
		if !knownLineKey(key) {
			return nil, fmt.Errorf("%w: unknown key %q (known: %s, %s)", ErrRuleSyntax, key, strings.Join(listKeys[:], ", "), keyHits)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: key %q given twice", ErrRuleSyntax, key)
		}
		seen[key] = true
		vals, err := p.values()
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", ErrRuleSyntax, key, err)
		}
		if key != keyHits {
			m[key] = vals
		}
	}
}

func knownLineKey(k string) bool {
	if k == keyHits {
		return true
	}
	for _, lk := range listKeys {
		if k == lk {
			return true
		}
	}
	return false
}

// lineParser scans a rule line.
type lineParser struct {
	s string
	i int
}

func (p *lineParser) done() bool   { return p.i >= len(p.s) }
func (p *lineParser) rest() string { return p.s[p.i:] }

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// skipSpace skips spaces and tabs and reports whether there were any.
func (p *lineParser) skipSpace() bool {
	start := p.i
	for !p.done() && isSpace(p.s[p.i]) {
		p.i++
	}
	return p.i > start
}

// bare reads a run of characters other than space, tab, ',' and '"'.
func (p *lineParser) bare() string {
	start := p.i
	for !p.done() {
		c := p.s[p.i]
		if isSpace(c) || c == ',' || c == '"' {
			break
		}
		p.i++
	}
	return p.s[start:p.i]
}

// key reads a lowercased key and the '=' after it.
func (p *lineParser) key() (string, bool) {
	start := p.i
	for !p.done() && p.s[p.i] != '=' && !isSpace(p.s[p.i]) {
		p.i++
	}
	if p.done() || p.s[p.i] != '=' || p.i == start {
		return "", false
	}
	k := strings.ToLower(p.s[start:p.i])
	p.i++
	return k, true
}

// values reads v1,v2,... up to a space, a tab or the end.
func (p *lineParser) values() ([]any, error) {
	var vals []any
	for {
		var v string
		if !p.done() && p.s[p.i] == '"' {
			q, err := strconv.QuotedPrefix(p.rest())
			if err != nil {
				return nil, fmt.Errorf("bad quoted value at %q", p.rest())
			}
			v, _ = strconv.Unquote(q) // QuotedPrefix checked it
			p.i += len(q)
		} else {
			v = p.bare()
			if v == "" {
				return nil, fmt.Errorf("empty value at %q (quote an empty string: \"\")", p.rest())
			}
		}
		vals = append(vals, v)
		if p.done() || isSpace(p.s[p.i]) {
			return vals, nil
		}
		if p.s[p.i] != ',' {
			return nil, fmt.Errorf("want ',' or a space at %q", p.rest())
		}
		p.i++
	}
}
