package core

import (
	"fmt"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// durationRule is the range of one duration key of the configuration.
// A value outside it is refused wherever it comes from: the file, the
// environment, the saved state or PCTP CONFIG.
type durationRule struct {
	key      string
	min, max time.Duration
	// zero says what 0 means where 0 is allowed ("off"); "" refuses 0.
	zero string
	// negative says what a negative value means where one is allowed.
	negative string
}

// durationRules are the engine's duration keys and their ranges. The
// minimums are the smallest values that can work at all (a handshake of
// a few milliseconds resets every client); the maximums keep a value from
// overflowing or meaning "forever" by accident.
var durationRules = []durationRule{
	{key: "socks.handshake_timeout", min: 100 * time.Millisecond, max: 10 * time.Minute},
	{key: "socks.connect_timeout", min: 100 * time.Millisecond, max: 10 * time.Minute},
	{key: "socks.linger", min: 100 * time.Millisecond, max: 24 * time.Hour},
	{key: "socks.idle_timeout", min: 100 * time.Millisecond, max: 365 * 24 * time.Hour, zero: "off"},
	{key: "socks.drain_timeout", min: 100 * time.Millisecond, max: 24 * time.Hour},
	// The kernel counts keep-alive in whole seconds, up to 32767.
	{key: "socks.keepalive", min: time.Second, max: 32767 * time.Second, zero: "the system's timing", negative: "off"},
	{key: "socks.bind.timeout", min: 100 * time.Millisecond, max: time.Hour},
	{key: "socks.udp.idle_timeout", min: 100 * time.Millisecond, max: 24 * time.Hour},
}

func durationRuleOf(key string) durationRule {
	for _, r := range durationRules {
		if r.key == key {
			return r
		}
	}
	panic("core: no duration rule for " + key) // a programming error
}

// check refuses a value out of the key's range, naming the range; the
// caller names the key and wraps the sentinel of its context.
func (r durationRule) check(d time.Duration) error {
	switch {
	case d == 0 && r.zero != "", d < 0 && r.negative != "":
		return nil
	case d >= r.min && d <= r.max:
		return nil
	}
	also := ""
	if r.zero != "" {
		also += ", or 0s (" + r.zero + ")"
	}
	if r.negative != "" {
		also += ", or negative (" + r.negative + ")"
	}
	return fmt.Errorf("%s is out of range: want %s to %s%s", d, r.min, r.max, also)
}

// parseDuration reads a value for the key, as text (environment, PCTP
// CONFIG, the saved state), and checks its range.
func (r durationRule) parse(value string) (time.Duration, error) {
	d, err := middleware.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", middleware.ErrBadValue, r.key, err)
	}
	if err := r.check(d); err != nil {
		return 0, fmt.Errorf("%w: %s: %w", middleware.ErrBadValue, r.key, err)
	}
	return d, nil
}

// engineSetting is one of the engine's own settings that PCTP's CONFIG
// lists and changes, named as in the configuration file.
type engineSetting struct {
	key   string
	help  string
	field func(*Settings) *time.Duration
}

var engineSettings = []engineSetting{
	{"socks.handshake_timeout", "greeting, authentication and request must finish within this",
		func(s *Settings) *time.Duration { return &s.HandshakeTimeout }},
	{"socks.connect_timeout", "dialing a destination, every address included, must finish within this",
		func(s *Settings) *time.Duration { return &s.ConnectTimeout }},
	{"socks.idle_timeout", "a relay with no bytes either way for this long is closed; 0s: off",
		func(s *Settings) *time.Duration { return &s.IdleTimeout }},
	{"socks.linger", "after one direction of a relay ends, the other may idle this long",
		func(s *Settings) *time.Duration { return &s.Linger }},
	{"socks.drain_timeout", "on stop, open connections may finish for this long",
		func(s *Settings) *time.Duration { return &s.DrainTimeout }},
}

func findEngineSetting(key string) (engineSetting, bool) {
	for _, e := range engineSettings {
		if e.key == key {
			return e, true
		}
	}
	return engineSetting{}, false
}

// parse checks a value for the setting: a duration with a unit, in the
// key's range (durationRules).
func (e engineSetting) parse(value string) (time.Duration, error) {
	return durationRuleOf(e.key).parse(value)
}

// engineSettingsOf lists the engine's settings as CONFIG shows them.
func engineSettingsOf(s Settings) []middleware.Setting {
	out := make([]middleware.Setting, len(engineSettings))
	for i, e := range engineSettings {
		out[i] = middleware.Setting{Key: e.key, Value: e.field(&s).String(), Help: e.help}
	}
	return out
}
