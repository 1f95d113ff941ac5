package middleware_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// decodeOne decodes v (a value as the file, the environment or
// middleware.ParseValue gives it) into a T the way a stage's New does.
func decodeOne[T any](v any) (T, error) {
	var cfg struct {
		V T `json:"v"`
	}
	err := middleware.Decode(map[string]any{"v": v}, &cfg)
	return cfg.V, err
}

// pasteBack reads s as CONFIG does (ParseValue, then Decode) into a T.
func pasteBack[T any](t *testing.T, s string) T {
	t.Helper()
	v, err := middleware.ParseValue(s)
	if err != nil {
		t.Fatalf("ParseValue(%q): %v", s, err)
	}
	got, err := decodeOne[T](v)
	if err != nil {
		t.Fatalf("%q read back: %v", s, err)
	}
	return got
}

// checkForms decodes every form to want, and checks that want's String
// reads back to want.
func checkForms[T interface{ String() string }](t *testing.T, want T, forms ...any) {
	t.Helper()
	for _, form := range forms {
		got, err := decodeOne[T](form)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%T from %#v = %v, %v; want %v", want, form, got, err, want)
		}
		if text, ok := form.(string); ok { // typed in CONFIG
			if v, err := middleware.ParseValue(text); err == nil {
				if got, err := decodeOne[T](v); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%T from CONFIG text %q = %v, %v; want %v", want, text, got, err, want)
				}
			}
		}
	}
	if back := pasteBack[T](t, want.String()); !reflect.DeepEqual(back, want) {
		t.Errorf("%T %v prints %q, which reads back as %v", want, want, want.String(), back)
	}
}

func checkRefused[T any](t *testing.T, forms ...any) {
	t.Helper()
	for _, form := range forms {
		if got, err := decodeOne[T](form); !errors.Is(err, middleware.ErrBadValue) {
			t.Errorf("%T from %#v = %v, %v; want ErrBadValue", got, form, got, err)
		}
	}
}

func TestPortForms(t *testing.T) {
	checkForms(t, middleware.Port(443), 443, "443", " 443 ", uint64(443))
	checkForms(t, middleware.Port(0), 0, "0")
	checkRefused[middleware.Port](t, 65536, -1, "x", "1-2", true, 1.5, []any{1}, "")
}

func TestPortRangeForms(t *testing.T) {
	checkForms(t, middleware.PortRange{Lo: 443, Hi: 443}, 443, "443", "443-443")
	checkForms(t, middleware.PortRange{Lo: 1, Hi: 1023}, "1-1023", "1 - 1023", " 1-1023 ")
	checkForms(t, middleware.PortRange{Lo: 2000, Hi: 3000}, "2000-3000") // not a date
	checkForms(t, middleware.PortRange{}, 0, "0")
	checkRefused[middleware.PortRange](t, "5-1", "1-", "-1", "a", 70000, "1-70000", true, 1.5, []any{1, 2}, "", nil)
	r := middleware.PortRange{Lo: 10, Hi: 20}
	if !r.Contains(10) || !r.Contains(20) || r.Contains(9) || r.Contains(21) {
		t.Errorf("%v.Contains is wrong", r)
	}
}

func TestDurationAndSizeForms(t *testing.T) {
	checkForms(t, middleware.Duration(90*time.Second), "90s", "1m30s", "1.5m", " 90s")
	checkForms(t, middleware.Duration(0), 0, "0", "0s")
	checkRefused[middleware.Duration](t, 10, "10", "fast", true, "-1s")
	checkForms(t, middleware.Size(64<<10), 65536, "65536", "64KiB", "64 KiB", "64k")
	checkRefused[middleware.Size](t, -1, "lots", true, "1.5MiB")
}

func TestListForms(t *testing.T) {
	ports := middleware.List[middleware.PortRange]{{Lo: 25, Hi: 25}, {Lo: 2000, Hi: 3000}}
	checkForms(t, ports, []any{25, "2000-3000"}, "25,2000-3000", "25, 2000-3000", "[25, 2000-3000]", "[ '25' , \"2000-3000\" , ]")
	checkForms(t, middleware.List[middleware.PortRange]{{Lo: 80, Hi: 80}}, 80, "80", []any{80}, "[80]")
	checkForms(t, middleware.List[middleware.PortRange]{}, nil, "", []any{}, "[]")
	checkForms(t, middleware.List[middleware.Duration]{middleware.Duration(time.Millisecond), middleware.Duration(1500 * time.Microsecond)},
		"1ms,1.5ms", []any{"1ms", "1500us"}, "[1ms, 1.5ms]")
	checkForms(t, middleware.List[int]{1, -2}, "1,-2", []any{1, -2}, "[1, -2]")
	checkRefused[middleware.List[middleware.PortRange]](t, "25,x", []any{25, true}, true, map[string]any{"a": 1})
	if _, err := decodeOne[middleware.List[middleware.Port]]("25,x,80"); err == nil || !strings.Contains(err.Error(), "item 2") {
		t.Errorf("error %v does not name item 2", err)
	}
	// Strings that ParseValue would read otherwise are quoted.
	tricky := middleware.List[string]{"a,b", "80", "true", "x y", "it's", "[", "a: b", "#c", "", "~", "2001-12-14", "tab\there", "café", `q"q`, `back\slash`}
	if back := pasteBack[middleware.List[string]](t, tricky.String()); !reflect.DeepEqual(back, tricky) {
		t.Errorf("%q prints %s, which reads back as %q", []string(tricky), tricky, []string(back))
	}
}

// formatSeeds are values as ParseValue returns them.
var formatSeeds = []any{
	nil, true, false, 0, -5, 8000, uint64(math.MaxUint64), 1.5, 5.0, -2.5e-300, math.Inf(1), math.Inf(-1),
	"", "plain", "80,443", "10s", "a b", "'q'", "\"q\"", "a: b", "#", "- a", "---x", "...", "~", "null", "true", "0x10", "1e3",
	"2001-12-14", "2000-3000", "tab\t", "line\nbreak", "\u2028", "\x00", "é", "\ufeff", "[x]", "{a}", "*a", "&a", "!t", "|", ">", "%", "@", "`",
	[]any{}, []any{1, "a,b", nil, []any{"x y", 2.5}},
}

// TestFormatValueRoundTrip: FormatValue prints a value ParseValue reads
// back to the same value.
func TestFormatValueRoundTrip(t *testing.T) {
	for _, v := range formatSeeds {
		checkFormat(t, v)
	}
}

func FuzzFormatValueString(f *testing.F) {
	for _, v := range formatSeeds {
		if s, ok := v.(string); ok {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isUTF8(s) {
			return
		}
		checkFormat(t, s)
		checkFormat(t, []any{s, s})
	})
}

func isUTF8(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' {
			return false
		}
	}
	return true
}

func checkFormat(t *testing.T, v any) {
	t.Helper()
	text := middleware.FormatValue(v)
	if v == nil {
		text = "[" + text + "]" // nil alone is no value
		v = []any{nil}
	}
	got, err := middleware.ParseValue(text)
	if err != nil {
		t.Errorf("FormatValue(%#v) = %q, which ParseValue refuses: %v", v, text, err)
		return
	}
	if !sameValue(got, v) {
		t.Errorf("FormatValue(%#v) = %q, read back as %#v", v, text, got)
	}
}

// sameValue is reflect.DeepEqual with NaN equal to itself and an int
// equal to the same uint64.
func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		if fb, ok := b.(float64); ok && math.IsNaN(fa) && math.IsNaN(fb) {
			return true
		}
	}
	return reflect.DeepEqual(a, b)
}
