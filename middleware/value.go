package middleware

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseValue reads the text of a live setting (PCTP's CONFIG key=text) as
// the value a stage's configuration map holds, the same value the YAML
// file would give: 8000 is a number, 10s and 1MiB and 80,443 are strings,
// true is a bool, [80, 443] is a list ([]any), 'quoted' and "quoted" are
// strings. A list may hold null (~) items, read as nil, but the whole text
// may not be null, ~ or empty: that sets nothing. It reads what YAML reads,
// to the same value, for one line of those forms; YAML's other syntax
// (mappings, anchors, tags, comments, block forms, dates) is refused with
// an error wrapping ErrBadValue. The engine reads CONFIG values with it,
// and so does mwtest.Set.
func ParseValue(text string) (any, error) {
	p := valueParser{s: text}
	if err := p.check(); err != nil {
		return nil, err
	}
	p.space()
	v, err := p.value(false)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.fail("unexpected %q", p.s[p.i:])
	}
	if v == nil {
		return nil, p.fail("empty")
	}
	return v, nil
}

// valueParser reads one line of YAML's flow syntax, refusing what it does
// not read exactly as YAML does.
type valueParser struct {
	s string
	i int
}

func (p *valueParser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %q is not a value: %s", ErrBadValue, p.s, fmt.Sprintf(format, args...))
}

// check refuses text YAML would not read as one printable line.
func (p *valueParser) check() error {
	for _, r := range p.s {
		switch {
		case r == utf8.RuneError:
			return p.fail("not UTF-8")
		case r == 0x2028 || r == 0x2029: // line breaks to YAML
			return p.fail("character %U", r)
		case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd && r != 0xfeff:
		default:
			return p.fail("character %U", r)
		}
	}
	if strings.HasPrefix(p.s, "---") || strings.HasPrefix(p.s, "...") {
		return p.fail("a document marker")
	}
	return nil
}

func (p *valueParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// value reads a list, a quoted string or a plain scalar; inList says it
// is an item of a list, where , [ ] { } end a plain scalar.
func (p *valueParser) value(inList bool) (any, error) {
	if p.i == len(p.s) {
		if inList {
			return nil, p.fail("missing item")
		}
		return nil, nil
	}
	switch c := p.s[p.i]; c {
	case '[':
		return p.list()
	case '\'':
		return p.single()
	case '"':
		return p.double()
	case '-':
		if p.i+1 == len(p.s) || p.s[p.i+1] == ' ' {
			return nil, p.fail("a block list")
		}
	case '?', ':', ',', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`':
		return nil, p.fail("%q starts YAML syntax this setting does not take", c)
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if inList && strings.IndexByte(",[]{}", c) >= 0 {
			break
		}
		if inList && c == '?' { // YAML ends a plain scalar there in a list
			return nil, p.fail("%q in a list item", c)
		}
		if c == '#' && p.s[p.i-1] == ' ' {
			return nil, p.fail("a comment")
		}
		if c == ':' && (p.i+1 == len(p.s) || strings.IndexByte(" ,?[]{}", p.s[p.i+1]) >= 0) {
			return nil, p.fail("a mapping")
		}
		p.i++
	}
	plain := strings.TrimRight(p.s[start:p.i], " ")
	if inList && p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != ']' {
		return nil, p.fail("unexpected %q", p.s[p.i])
	}
	return resolvePlain(plain)
}

// list reads [item, item, ...]; a trailing comma is allowed, as in YAML.
func (p *valueParser) list() (any, error) {
	p.i++ // [
	out := []any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return out, nil
		}
		v, err := p.value(true)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		if p.i == len(p.s) {
			return nil, p.fail("unclosed list")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return out, nil
		default:
			return nil, p.fail("unexpected %q in a list", p.s[p.i])
		}
	}
}

// single reads a single-quoted string, in which two quotes stand for one.
func (p *valueParser) single() (any, error) {
	var b strings.Builder
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if p.i+1 < len(p.s) && p.s[p.i+1] == '\'' {
			b.WriteByte('\'')
			p.i++
			continue
		}
		p.i++
		return b.String(), p.afterQuoted()
	}
	return nil, p.fail("unclosed quote")
}

// escapes are the one-character escapes of a double-quoted YAML string
// that the YAML reader takes (it refuses \/).
var escapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", 'n': "\n", 'v': "\v", 'f': "\f",
	'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// double reads a double-quoted string with YAML's escapes.
func (p *valueParser) double() (any, error) {
	var b strings.Builder
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), p.afterQuoted()
		case '\\':
		default:
			b.WriteByte(c)
			continue
		}
		p.i++
		if p.i == len(p.s) {
			break
		}
		if e, ok := escapes[p.s[p.i]]; ok {
			b.WriteString(e)
			continue
		}
		width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[p.s[p.i]]
		if width == 0 || p.i+width >= len(p.s) {
			return nil, p.fail("bad escape")
		}
		n, err := strconv.ParseUint(p.s[p.i+1:p.i+1+width], 16, 32)
		if err != nil || !utf8.ValidRune(rune(n)) {
			return nil, p.fail("bad escape")
		}
		b.WriteRune(rune(n))
		p.i += width
	}
	return nil, p.fail("unclosed quote")
}

// afterQuoted refuses what would make a quoted string a mapping key or
// run on into more text.
func (p *valueParser) afterQuoted() error {
	j := p.i
	for j < len(p.s) && p.s[j] == ' ' {
		j++
	}
	if j < len(p.s) && strings.IndexByte(",]", p.s[j]) < 0 {
		return p.fail("unexpected %q after a quoted string", p.s[j:])
	}
	return nil
}

// resolvePlain gives a plain scalar its type as YAML does (null, bool,
// int, float or string); a date is refused rather than read as a time.
func resolvePlain(in string) (any, error) {
	switch in {
	case "", "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	case ".nan", ".NaN", ".NAN":
		return math.NaN(), nil
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF":
		return math.Inf(1), nil
	case "-.inf", "-.Inf", "-.INF":
		return math.Inf(-1), nil
	case "<<":
		return nil, fmt.Errorf("%w: %q is not a value: a merge key", ErrBadValue, in)
	}
	switch c := in[0]; {
	case c == '.':
		if f, err := strconv.ParseFloat(in, 64); err == nil {
			return f, nil
		}
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if looksLikeDate(in) {
			return nil, fmt.Errorf("%w: %q is not a value: a date", ErrBadValue, in)
		}
		return resolveNumber(in), nil
	}
	return in, nil
}

// looksLikeDate reports whether YAML reads in as a timestamp: four
// digits, a dash, and then one of YAML's date forms (2001-12-14,
// 2001-12-14 21:59:43.10, 2001-12-14t21:59:43.10-05:00). 2000-3000 (a
// port range) is not one.
func looksLikeDate(in string) bool {
	if len(in) <= 4 || in[4] != '-' || strings.Trim(in[:4], "0123456789") != "" {
		return false
	}
	for _, layout := range []string{"2006-1-2T15:4:5.999999999Z07:00", "2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2"} {
		if _, err := time.Parse(layout, in); err == nil {
			return true
		}
	}
	return false
}

// resolveNumber reads a plain scalar that starts with a digit or a sign
// as YAML does: an int (decimal, 0x, 0o, 0b, or a leading 0 for octal;
// underscores ignored), a uint64 when too large for an int64, a float, or
// else the string itself.
func resolveNumber(in string) any {
	plain := strings.ReplaceAll(in, "_", "")
	if n, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return int(n)
	}
	if n, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return n
	}
	if isYAMLFloat(plain) {
		if f, err := strconv.ParseFloat(plain, 64); err == nil {
			return f
		}
	}
	for _, pre := range []struct {
		prefix string
		base   int
	}{{"0b", 2}, {"0o", 8}} {
		if digits, ok := strings.CutPrefix(plain, pre.prefix); ok {
			if n, err := strconv.ParseInt(digits, pre.base, 64); err == nil {
				return int(n)
			}
			if n, err := strconv.ParseUint(digits, pre.base, 64); err == nil {
				return n
			}
		} else if digits, ok := strings.CutPrefix(plain, "-"+pre.prefix); ok {
			if n, err := strconv.ParseInt("-"+digits, pre.base, 64); err == nil {
				return int(n)
			}
		}
	}
	return in
}

// isYAMLFloat matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
func isYAMLFloat(s string) bool {
	digits := func(s string) (rest string, n int) {
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		return s[n:], n
	}
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	var n int
	if strings.HasPrefix(s, ".") {
		if s, n = digits(s[1:]); n == 0 {
			return false
		}
	} else {
		if s, n = digits(s); n == 0 {
			return false
		}
		if strings.HasPrefix(s, ".") {
			s, _ = digits(s[1:])
		}
	}
	if s != "" && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s != "" && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		if s, n = digits(s); n == 0 {
			return false
		}
	}
	return s == ""
}
