package core

import (
	"fmt"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// engineSetting is one of the engine's own settings that PCTP's CONFIG
// lists and changes, named as in the configuration file.
type engineSetting struct {
	key       string
	help      string
	field     func(*Settings) *time.Duration
	allowZero bool // 0 turns it off
}

var engineSettings = []engineSetting{
	{"socks.handshake_timeout", "greeting, authentication and request must finish within this",
		func(s *Settings) *time.Duration { return &s.HandshakeTimeout }, false},
	{"socks.connect_timeout", "dialing a destination, every address included, must finish within this",
		func(s *Settings) *time.Duration { return &s.ConnectTimeout }, false},
	{"socks.idle_timeout", "a relay with no bytes either way for this long is closed; 0s: off",
		func(s *Settings) *time.Duration { return &s.IdleTimeout }, true},
	{"socks.linger", "after one direction of a relay ends, the other may idle this long",
		func(s *Settings) *time.Duration { return &s.Linger }, false},
	{"socks.drain_timeout", "on stop, open connections may finish for this long",
		func(s *Settings) *time.Duration { return &s.DrainTimeout }, false},
}

func findEngineSetting(key string) (engineSetting, bool) {
	for _, e := range engineSettings {
		if e.key == key {
			return e, true
		}
	}
	return engineSetting{}, false
}

// parse checks a value for the setting.
func (e engineSetting) parse(value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 || (d == 0 && !e.allowZero) {
		return 0, fmt.Errorf("%w: %s: %q is not a positive duration (e.g. 10s, 1m30s)", middleware.ErrBadValue, e.key, value)
	}
	return d, nil
}

// engineSettingsOf lists the engine's settings as CONFIG shows them.
func engineSettingsOf(s Settings) []middleware.Setting {
	out := make([]middleware.Setting, len(engineSettings))
	for i, e := range engineSettings {
		out[i] = middleware.Setting{Key: e.key, Value: e.field(&s).String(), Help: e.help}
	}
	return out
}
