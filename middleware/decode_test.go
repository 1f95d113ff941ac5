package middleware_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// A duration without a unit is refused, never read as nanoseconds or
// seconds, whether it comes as text (PCTP CONFIG, the environment) or as a
// number (YAML).
func TestParseDurationNeedsAUnit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		hint string // in the error; "" means valid
	}{
		{in: "10s", want: 10 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "-1s", want: -time.Second},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "10", hint: "write 10s"},
		{in: "1.5", hint: "write 1.5s"},
		{in: "1e300", hint: "without a unit"},
		{in: "1e400", hint: "without a unit"},
		{in: "inf", hint: "without a unit"},
		{in: "NaN", hint: "without a unit"},
		{in: "1e300s", hint: "not a duration"},
		{in: "soon", hint: "not a duration"},
		{in: "", hint: "not a duration"},
	} {
		got, err := middleware.ParseDuration(tt.in)
		if tt.hint == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), tt.hint) {
			t.Errorf("ParseDuration(%q) = %v, %v; want ErrBadValue saying %q", tt.in, got, err, tt.hint)
		}
	}
}

func TestDecodeDurationStrict(t *testing.T) {
	type cfg struct {
		Ban middleware.Duration `json:"ban"`
	}
	for _, tt := range []struct {
		value any
		want  time.Duration
		ok    bool
	}{
		{value: "90s", want: 90 * time.Second, ok: true},
		{value: 0, want: 0, ok: true},
		{value: 10},    // was 10 seconds
		{value: 1e300}, // was a negative duration (overflow)
		{value: 2.5},
		{value: "10"},
		{value: "-1m"},
		{value: nil},
		{value: true},
	} {
		c := cfg{Ban: middleware.Duration(time.Hour)}
		err := middleware.Decode(map[string]any{"ban": tt.value}, &c)
		if tt.ok {
			if err != nil || time.Duration(c.Ban) != tt.want {
				t.Errorf("ban: %v: got %v, %v; want %v", tt.value, time.Duration(c.Ban), err, tt.want)
			}
			continue
		}
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), `"ban"`) {
			t.Errorf("ban: %v: err = %v, want ErrBadValue naming the key", tt.value, err)
		}
		if time.Duration(c.Ban) != time.Hour {
			t.Errorf("ban: %v: value changed to %v on error", tt.value, time.Duration(c.Ban))
		}
	}
}

func TestDecodeSizeStrict(t *testing.T) {
	type cfg struct {
		Size middleware.Size `json:"size"`
	}
	for _, tt := range []struct {
		value any
		want  middleware.Size
		ok    bool
	}{
		{value: 4096, want: 4096, ok: true},
		{value: "64KiB", want: 64 << 10, ok: true},
		{value: 4096.5},
		{value: 1e300},
		{value: -1},
		{value: "1.5MiB"},
		{value: nil},
		{value: "0x10"},
	} {
		c := cfg{Size: 7}
		err := middleware.Decode(map[string]any{"size": tt.value}, &c)
		if tt.ok {
			if err != nil || c.Size != tt.want {
				t.Errorf("size: %v: got %v, %v; want %v", tt.value, c.Size, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), `"size"`) {
			t.Errorf("size: %v: err = %v, want ErrBadValue naming the key", tt.value, err)
		}
	}
}
