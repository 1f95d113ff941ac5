package match

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The one-line rule syntax, shared by the stages whose rules PCTP lists and
// edits (RULES, RULE ADD):
//
//	[<word>] [key=v1,v2,... ...]
//
// Fields are separated by spaces or tabs; each key at most once, in any
// order. A first field without '=' is the rule's word (filter's action,
// forward's direct). Values are separated by commas with no space. A value
// holding a space, a tab, a comma, a double quote, '=', '\' or a character
// outside printable ASCII is written as a Go double-quoted string ("bob
// smith"), and such a string is accepted for any value.

// WriteField writes " key=v1,v2" to b, quoting values as needed.
func WriteField(b *strings.Builder, key string, vals []string) {
	b.WriteByte(' ')
	b.WriteString(key)
	b.WriteByte('=')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(QuoteValue(v))
	}
}

// QuoteValue returns v, double-quoted when it could not be read back bare.
func QuoteValue(v string) string {
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

// ParseLine reads a rule line: its first word ("" when the line starts
// with a key=value field) and its fields, each a list of values (as []any
// of strings, the YAML shape). known lists the keys a line may have, in
// the order errors name them. Values are not validated here. The error
// says what is wrong, for the caller to wrap with its syntax sentinel.
func ParseLine(text string, known []string) (string, map[string][]any, error) {
	p := lineParser{s: text}
	p.skipSpace()
	start := p.i
	word := p.bare()
	if strings.Contains(word, "=") {
		word, p.i = "", start
	}
	fields := map[string][]any{}
	first := word == ""
	for {
		if !first && !p.skipSpace() {
			if p.done() {
				return word, fields, nil
			}
			return "", nil, fmt.Errorf("at %q: want a space between fields", p.rest())
		}
		first = false
		if p.done() {
			return word, fields, nil
		}
		key, ok := p.key()
		if !ok {
			return "", nil, fmt.Errorf("at %q: want key=value", p.rest())
		}
		if !containsString(known, key) {
			return "", nil, fmt.Errorf("unknown key %q (known: %s)", key, strings.Join(known, ", "))
		}
		if _, seen := fields[key]; seen {
			return "", nil, fmt.Errorf("key %q given twice", key)
		}
		vals, err := p.values()
		if err != nil {
			return "", nil, fmt.Errorf("key %q: %w", key, err)
		}
		fields[key] = vals
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
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

// errEmptyValue is an empty bare value.
var errEmptyValue = errors.New("empty value")

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
				return nil, fmt.Errorf("%w at %q (quote an empty string: \"\")", errEmptyValue, p.rest())
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
