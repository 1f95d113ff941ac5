package middleware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value types for a stage's configuration. A value reaches a stage from
// the YAML file, from the environment (text) or from PCTP's CONFIG (text
// read by ParseValue), so one setting arrives as a number, a string or a
// list depending on how the operator typed it. These types take every
// form an operator types for them, and print (String) a form CONFIG reads
// back to the same value, so a line CONFIG lists can be pasted back:
//
//	type config struct {
//		Block middleware.List[middleware.PortRange] `json:"block"`
//		Idle  middleware.Duration                   `json:"idle"`
//		Max   middleware.Size                       `json:"max"`
//	}
//
// Size and Duration are in decode.go.

// Port is a TCP or UDP port: 443 or "443". 0 is a port to the type; a
// stage that gives it a meaning ("any") or refuses it says so.
type Port uint16

// ParsePort reads a port, 0 to 65535, written in decimal.
func ParsePort(s string) (Port, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, &ValueError{s, "is not a port (0-65535)"}
	}
	return Port(n), nil
}

// UnmarshalJSON accepts a number or a string holding one.
func (p *Port) UnmarshalJSON(b []byte) error { return unmarshalScalar(b, "a port", ParsePort, p) }

// String prints the port in decimal.
func (p Port) String() string { return strconv.Itoa(int(p)) }

// PortRange is the ports Lo to Hi, both included: 443, "443", "1-1023"
// (spaces around the dash are allowed). A single port has Lo == Hi. Port
// 0 is a port to the type; a stage that gives it a meaning ("any") or
// refuses it says so.
type PortRange struct {
	Lo, Hi uint16
}

// ParsePortRange reads a port or a range "low-high" of ports 0 to 65535,
// low not above high.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil {
		return PortRange{}, &ValueError{s, "is not a port (0-65535) or a range (low-high)"}
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil {
			return PortRange{}, &ValueError{s, "is not a port (0-65535) or a range (low-high)"}
		}
		if b < a {
			return PortRange{}, &ValueError{s, "is a range whose low end is above its high end"}
		}
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// UnmarshalJSON accepts a number (one port) or a string (a port or a
// range).
func (r *PortRange) UnmarshalJSON(b []byte) error {
	return unmarshalScalar(b, "a port or a range", ParsePortRange, r)
}

// String prints "443" for a single port, "1-1023" for a range.
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint16) bool { return r.Lo <= port && port <= r.Hi }

// unmarshalScalar reads b, a JSON number or string, with parse into *out;
// what names what it wants in the error.
func unmarshalScalar[T any](b []byte, what string, parse func(string) (T, error), out *T) error {
	text, err := scalarText(b, what)
	if err != nil {
		return err
	}
	v, err := parse(text)
	if err != nil {
		return err
	}
	*out = v
	return nil
}

// scalarText returns a JSON number's text or a JSON string's content;
// anything else is ErrBadValue, saying it wants what.
func scalarText(b []byte, what string) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil || string(b) == "null" {
		return "", fmt.Errorf("%w: want %s (a number or text), got %s", ErrBadValue, what, b)
	}
	return n.String(), nil
}

// List is a list setting whose items are of type T. It takes the forms
// an operator types: a list ([80, 443] in the file or in CONFIG, a YAML
// block list), one item alone (80), or one string of items separated by
// commas ("80,443": the environment, or CONFIG's 80,443), each item then
// read as CONFIG reads a value (80 a number, 10s a string), or a string
// that is a list as CONFIG reads one ("[80, 443]"). Null and an empty
// string are an empty list. String prints [80, 443].
type List[T any] []T

// UnmarshalJSON accepts a JSON array, a string of comma-separated items,
// or one item; an item that T refuses is an error naming its position.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var items []json.RawMessage
	switch {
	case string(b) == "null":
		*l = List[T]{}
		return nil
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*l = List[T]{}
			return nil
		}
		if strings.HasPrefix(s, "[") { // a list written as text: "[80, 443]"
			v, err := ParseValue(s)
			if err != nil {
				return err
			}
			raw, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("%w: %q: %w", ErrBadValue, s, err)
			}
			return l.UnmarshalJSON(raw)
		}
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			var v any = part
			if pv, err := ParseValue(part); err == nil {
				v = pv
			}
			raw, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("%w: %q: %w", ErrBadValue, part, err)
			}
			items = append(items, raw)
		}
	default:
		items = []json.RawMessage{b}
	}
	out := make(List[T], len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return fmt.Errorf("%w: item %d: %s", ErrBadValue, i+1, describeJSONError(err))
		}
	}
	*l = out
	return nil
}

// String prints the list as CONFIG reads it back: [a, b], each item as
// its String method (or fmt) prints it, quoted where ParseValue would
// otherwise read it as something else.
func (l List[T]) String() string {
	parts := make([]string, len(l))
	for i, item := range l {
		parts[i] = formatItem(item)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatItem prints one list item so that, read back as a list item and
// decoded into T, it is the same item.
func formatItem[T any](item T) string {
	var text string
	if s, ok := any(item).(fmt.Stringer); ok {
		text = s.String()
	} else {
		text = fmt.Sprint(item)
	}
	for _, cand := range []string{text, quoteValue(text)} {
		v, err := ParseValue("[" + cand + "]")
		if l, ok := v.([]any); err != nil || !ok || len(l) != 1 {
			continue
		}
		raw, err := json.Marshal(v.([]any)[0])
		if err != nil {
			continue
		}
		var back T
		if json.Unmarshal(raw, &back) == nil && reflect.DeepEqual(back, item) {
			return cand
		}
	}
	return quoteValue(text)
}

// FormatValue prints v, a value as ParseValue returns it (nil, bool, int,
// uint64, float64, string, or []any of them), as text ParseValue reads
// back to the same value: the inverse of ParseValue, for a stage that
// prints a setting's Value by hand. Strings are plain where that reads
// back the same, else double-quoted. nil prints ~ (which ParseValue takes
// only as a list item). Other types print as fmt does, as a string.
func FormatValue(v any) string { return formatValue(v, false) }

func formatValue(v any, inList bool) string {
	switch x := v.(type) {
	case nil:
		return "~"
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return ".nan"
		case math.IsInf(x, 1):
			return ".inf"
		case math.IsInf(x, -1):
			return "-.inf"
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case []any:
		parts := make([]string, len(x))
		for i, item := range x {
			parts[i] = formatValue(item, true)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		text := x
		if inList {
			text = "[" + x + "]"
		}
		got, err := ParseValue(text)
		if inList {
			if l, ok := got.([]any); ok && len(l) == 1 {
				got = l[0]
			}
		}
		if err == nil && got == any(x) {
			return x
		}
		return quoteValue(x)
	}
	return formatValue(fmt.Sprint(v), inList)
}

// quoteValue double-quotes s with the escapes ParseValue reads.
func quoteValue(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff && r != 0x2028 && r != 0x2029, r >= 0xe000 && r <= 0xfffd && r != 0xfeff:
			b.WriteRune(r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
