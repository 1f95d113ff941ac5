package core

import (
	"errors"
	"math"
	"reflect"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/socks5d/socks5d/middleware"
)

// valueSeeds are texts an operator types after CONFIG key=.
var valueSeeds = []string{
	"8000", "0", "-5", "+7", "1_000", "0x1F", "0o17", "0777", "08", "0b101", "-0b11", "-0o7",
	"99999999999999999999999", "18446744073709551615", "1.5", ".5", "1e3", "-2.5E-3", "1.", ".inf", "-.Inf", ".nan",
	"true", "False", "TRUE", "yes", "no", "on", "off", "null", "~", "", " ", "  8000  ",
	"10s", "1m30s", "1MiB", "64KiB", "32k", "80,443", "allow", "deny", "fast", "a b", "127.0.0.1", "::1",
	"[]", "[25, 465]", "[25,465]", "[ 25 , 465 , ]", "[1ms, 30ms, 1h]", "[a b, c]", "[[1, 2], [3]]", "['x', \"y\"]", "[null, ~]",
	"'quoted'", "'it''s'", `"a\tb"`, `"\u00e9\x41"`, `"q\"q"`, "''", `""`,
	"a:b", "http://x", "a#b", "café", "x]", "[x", "a, b", "2000-3000", "40000-40999", "[1-1023, 2000-3000]", "2001-13-45", "2001-1-2x",
	// Refused: YAML reads them, but not as one value of these forms.
	"a: b", "a #c", "- a", "{a: 1}", "&a x", "*a", "!!str 1", "|", ">", "%x", "@x", "`x", "2001-12-14", "[a: 1]",
	"---", "...", "[0?]", "a?b", "a\u2028b", "[a?b]", "'a' b", "[a]b", "<<", "\tx", "x\ty", "[a,,b]", "[,]", "\"\\q\"",
}

// TestParseValueAgreesWithYAML: what middleware.ParseValue reads, YAML
// reads to the same value (CONFIG values were read as YAML before; the
// kit's reader must not change what an operator's text means). What it
// refuses wraps middleware.ErrBadValue.
func TestParseValueAgreesWithYAML(t *testing.T) {
	accepted := 0
	for _, text := range valueSeeds {
		if agreeWithYAML(t, text) {
			accepted++
		}
	}
	if accepted < 60 {
		t.Errorf("only %d of %d seeds accepted", accepted, len(valueSeeds))
	}
	for text, want := range map[string]any{
		"8000": 8000, "10s": "10s", "[25, 465]": []any{25, 465}, "80,443": "80,443", "true": true, "[~]": []any{nil}, "'8000'": "8000",
	} {
		if got, err := middleware.ParseValue(text); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseValue(%q) = %#v, %v; want %#v", text, got, err, want)
		}
	}
}

func FuzzParseValueAgreesWithYAML(f *testing.F) {
	for _, s := range valueSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) { agreeWithYAML(t, text) })
}

// agreeWithYAML checks one text and reports whether ParseValue took it.
func agreeWithYAML(t *testing.T, text string) bool {
	t.Helper()
	got, err := middleware.ParseValue(text)
	if err != nil {
		if !errors.Is(err, middleware.ErrBadValue) {
			t.Errorf("ParseValue(%q): %v does not wrap ErrBadValue", text, err)
		}
		return false
	}
	var want any
	if err := yamlv3.Unmarshal([]byte(text), &want); err != nil {
		t.Errorf("ParseValue(%q) = %#v, but YAML refuses it: %v", text, got, err)
		return true
	}
	if !sameValue(got, want) {
		t.Errorf("ParseValue(%q) = %#v, YAML reads %#v", text, got, want)
	}
	return true
}

// sameValue is reflect.DeepEqual with NaN equal to itself.
func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		if fb, ok := b.(float64); ok && math.IsNaN(fa) && math.IsNaN(fb) {
			return true
		}
	}
	la, oka := a.([]any)
	lb, okb := b.([]any)
	if oka && okb {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameValue(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
