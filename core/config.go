package core

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultConfigFile is loaded when no file is named and it exists under the
// working directory.
const DefaultConfigFile = "configs/proxy.yaml"

// EnvPrefix starts every environment variable the configuration reads.
// Nesting is written with a double underscore: SOCKS5D_SOCKS__PORT=1081.
const EnvPrefix = "SOCKS5D_"

// Config is the typed configuration. It is decoded strictly from koanf and
// koanf is thrown away; nothing reads koanf at run time.
type Config struct {
	// Source is the file the configuration came from, "" for built-in defaults.
	Source string `koanf:"-"`

	// DataDir holds what the server writes: the state file, connection
	// logs. Default: data/ beside the configuration file, or under the
	// working directory on built-in defaults.
	DataDir string `koanf:"data_dir"`

	SOCKS SOCKSConfig `koanf:"socks"`
	PCTP  PCTPConfig  `koanf:"pctp"`
	// Metrics is the Prometheus endpoint, off by default.
	Metrics MetricsConfig `koanf:"metrics"`
	Log     LogConfig     `koanf:"log"`
	Users   []UserConfig  `koanf:"users"`
	// Chain is the ordered middleware chain (the `chain:` list).
	Chain []StageConfig `koanf:"-"`
}

// SOCKSConfig is the SOCKS listener and its per-connection limits.
type SOCKSConfig struct {
	Address string `koanf:"address"`
	Port    int    `koanf:"port"`
	// HandshakeTimeout bounds greeting + authentication + request.
	HandshakeTimeout time.Duration `koanf:"handshake_timeout"`
	// ConnectTimeout bounds the dial to the destination, all addresses included.
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	// Linger bounds how long the other direction may stay idle after one
	// direction of a relay has ended (half-close).
	Linger time.Duration `koanf:"linger"`
	// IdleTimeout closes a relay with no bytes either way for this long;
	// 0 turns it off.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// DrainTimeout is how long a stopping server lets open connections
	// finish before it closes them.
	DrainTimeout time.Duration `koanf:"drain_timeout"`
	// KeepAlive is TCP keep-alive on client and destination connections:
	// 0 turns it on with the system's timing (one system call a
	// connection), a positive value also sets the idle time and the
	// interval between probes, a negative one turns it off.
	KeepAlive time.Duration `koanf:"keepalive"`
	// Bind configures the BIND command.
	Bind BindConfig `koanf:"bind"`
	// UDP configures the UDP ASSOCIATE command.
	UDP UDPConfig `koanf:"udp"`
}

// BindConfig configures the BIND command (RFC 1928).
type BindConfig struct {
	// Address is the IP BIND listens on; "" picks the server's address
	// toward the expected peer (a route lookup).
	Address string `koanf:"address"`
	// Timeout bounds the wait for the expected peer after the first reply.
	Timeout time.Duration `koanf:"timeout"`
}

// UDPConfig configures the UDP ASSOCIATE command (RFC 1928).
type UDPConfig struct {
	// Ports is the range the client-facing relay port is taken from:
	// "0" (any ephemeral port) or "low-high".
	Ports string `koanf:"ports"`
	// Advertise is the IP sent in the reply instead of the relay socket's
	// own (for a server behind NAT); "" sends the relay's.
	Advertise string `koanf:"advertise"`
	// IdleTimeout ends an association with no datagram either way for
	// this long.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxAssociations caps the open associations (0: unlimited).
	MaxAssociations int `koanf:"max_associations"`
	// PerUser caps one user's open associations, or one client IP's for
	// anonymous clients (0: unlimited).
	PerUser int `koanf:"per_user"`
}

// PCTPConfig is the admin listener.
type PCTPConfig struct {
	Address string `koanf:"address"`
	Port    int    `koanf:"port"`
}

// MetricsConfig is the Prometheus /metrics listener.
type MetricsConfig struct {
	Enabled bool   `koanf:"enabled"`
	Address string `koanf:"address"`
	Port    int    `koanf:"port"`
}

// LogConfig is the logger's level and format.
type LogConfig struct {
	Level  string `koanf:"level"`  // DEBUG, INFO, WARN, ERROR, NONE
	Format string `koanf:"format"` // text or json
}

// UserConfig is one user of the `users:` list.
type UserConfig struct {
	Name     string `koanf:"name"`
	Password string `koanf:"password"` // plaintext or a bcrypt hash
	Role     string `koanf:"role"`
	// FromFlag marks a user given with -u.
	FromFlag bool `koanf:"-"`
}

// StageConfig is one entry of the `chain:` list: its type, its name (the
// type unless given) and the rest of its settings.
type StageConfig struct {
	Type   string
	Name   string
	Config map[string]any
}

// DefaultChain returns the stage types of the chain used when the
// configuration has none, in order (a fresh slice each call).
func DefaultChain() []string {
	return []string{"limits", "auth", "accounting", "metrics", "connlog", "iobuf"}
}

func defaults() map[string]any {
	types := DefaultChain()
	chain := make([]any, len(types))
	for i, t := range types {
		chain[i] = map[string]any{"use": t}
	}
	return map[string]any{
		"socks.address":           "0.0.0.0",
		"socks.port":              1080,
		"socks.handshake_timeout": "10s",
		"socks.connect_timeout":   "10s",
		"socks.linger":            "60s",
		"socks.idle_timeout":      "0s",
		"socks.drain_timeout":     "30s",
		"socks.keepalive":         "0s",
		"pctp.address":            "127.0.0.1",
		"pctp.port":               8080,
		"metrics.enabled":         false,
		"metrics.address":         "127.0.0.1",
		"metrics.port":            9180,
		"log.level":               "INFO",
		"log.format":              "text",
		"chain":                   chain,

		// BIND and UDP ASSOCIATE (bind.go, udp.go).
		"socks.bind.address":         "",
		"socks.bind.timeout":         "60s",
		"socks.udp.ports":            "0",
		"socks.udp.advertise":        "",
		"socks.udp.idle_timeout":     "2m",
		"socks.udp.max_associations": 1024,
		"socks.udp.per_user":         32,
	}
}

// LoadOptions are the sources of a configuration above the built-in
// defaults, lowest precedence first.
type LoadOptions struct {
	// File is the configuration file (-c). When empty, DefaultConfigFile is
	// used if it exists, else the built-in defaults alone.
	File string
	// Environ is the environment, as os.Environ returns it.
	Environ []string
	// Flags holds the command-line flags that were set, by key path
	// ("socks.port").
	Flags map[string]any
	// Users are initial ADMIN users from -u, "name:password" each.
	Users []string
}

// LoadConfig loads defaults → file → environment → flags into a fresh
// koanf instance and decodes it strictly. Every error wraps ErrConfig and
// names the key, flag or file at fault.
func LoadConfig(o LoadOptions) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults(), "."), nil); err != nil {
		return nil, fmt.Errorf("%w: defaults: %w", ErrConfig, err)
	}
	path := o.File
	if path == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			path = DefaultConfigFile
		}
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: config file %s does not exist", ErrConfig, path)
			}
			return nil, fmt.Errorf("%w: config file %s: %w", ErrConfig, path, err)
		}
	}
	environ := o.Environ
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   func() []string { return environ },
		TransformFunc: envKey,
	}), nil); err != nil {
		return nil, fmt.Errorf("%w: environment: %w", ErrConfig, err)
	}
	if len(o.Flags) > 0 {
		if err := k.Load(confmap.Provider(o.Flags, "."), nil); err != nil {
			return nil, fmt.Errorf("%w: flags: %w", ErrConfig, err)
		}
	}

	// `chain` is decoded by hand, in order, from the raw list.
	chainRaw := k.Get("chain")
	k.Delete("chain")
	cfg := &Config{Source: path}
	if err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			Result:           cfg,
			TagName:          "koanf",
		},
	}); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrConfig, describeDecodeError(err))
	}
	chain, err := parseChain(chainRaw)
	if err != nil {
		return nil, err
	}
	cfg.Chain = chain
	for _, u := range o.Users {
		name, pass, ok := strings.Cut(u, ":")
		if !ok || validCredential(name, pass) != nil {
			return nil, fmt.Errorf("%w: flag -u: want user:password, each 1-255 octets", ErrConfig)
		}
		cfg.Users = slices.DeleteFunc(cfg.Users, func(c UserConfig) bool { return c.Name == name })
		cfg.Users = append(cfg.Users, UserConfig{Name: name, Password: pass, Role: "admin", FromFlag: true})
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
		if path != "" {
			cfg.DataDir = filepath.Join(filepath.Dir(path), "data")
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// envKey maps SOCKS5D_SOCKS__HANDSHAKE_TIMEOUT to socks.handshake_timeout.
func envKey(k, v string) (string, any) {
	k = strings.ToLower(strings.TrimPrefix(k, EnvPrefix))
	return strings.ReplaceAll(k, "__", "."), v
}

// describeDecodeError turns mapstructure's wording into one line that
// names the key and, for an unknown key, the known ones.
func describeDecodeError(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "decoding failed due to the following error(s):\n\n", "")
	msg = strings.ReplaceAll(msg, "\n", "; ")
	if section, _, ok := strings.Cut(msg, "' has invalid keys:"); ok && strings.HasPrefix(section, "'") {
		section = strings.TrimPrefix(section, "'")
		if section == "core.Config" {
			section = ""
			msg = strings.Replace(msg, "'core.Config' has invalid keys:", "unknown top-level keys:", 1)
		} else {
			msg = strings.Replace(msg, "' has invalid keys:", "' has unknown keys:", 1)
		}
		if known := knownKeys(reflect.TypeOf(Config{}), section); len(known) > 0 {
			msg += " (known: " + strings.Join(known, ", ") + ")"
		}
	}
	return msg
}

// knownKeys lists the koanf keys of the struct at path ("" for the top
// level, "users[0]" for an element of a list) within t.
func knownKeys(t reflect.Type, path string) []string {
	for _, part := range strings.Split(path, ".") {
		part, _, _ = strings.Cut(part, "[")
		if part == "" {
			continue
		}
		found := false
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("koanf") == part {
				t, found = t.Field(i).Type, true
				break
			}
		}
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if !found || t.Kind() != reflect.Struct {
			return nil
		}
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("koanf"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	if path == "" {
		keys = append(keys, "chain")
	}
	slices.Sort(keys)
	return keys
}

// parseChain reads the `chain:` list, in order.
func parseChain(raw any) ([]StageConfig, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: chain: want a list of stages (- use: TYPE), got %T", ErrConfig, raw)
	}
	out := make([]StageConfig, 0, len(list))
	seen := map[string]bool{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: chain[%d]: want a mapping with use: TYPE", ErrConfig, i)
		}
		st := StageConfig{Config: map[string]any{}}
		for key, v := range m {
			switch key {
			case "use":
				st.Type, _ = v.(string)
			case "name":
				st.Name, _ = v.(string)
			default:
				st.Config[key] = v
			}
		}
		if st.Type == "" {
			return nil, fmt.Errorf("%w: chain[%d]: missing use: (known types: %s)", ErrConfig, i, strings.Join(middleware.Types(), ", "))
		}
		if st.Name == "" {
			st.Name = st.Type
		}
		if seen[st.Name] {
			return nil, fmt.Errorf("%w: chain[%d]: duplicate stage name %q (give one a different name:)", ErrConfig, i, st.Name)
		}
		seen[st.Name] = true
		out = append(out, st)
	}
	return out, nil
}

func (c *Config) validate() error {
	if err := validPort("socks.port", c.SOCKS.Port); err != nil {
		return err
	}
	if err := validPort("pctp.port", c.PCTP.Port); err != nil {
		return err
	}
	if err := validPort("metrics.port", c.Metrics.Port); err != nil {
		return err
	}
	for key, d := range map[string]time.Duration{
		"socks.handshake_timeout": c.SOCKS.HandshakeTimeout,
		"socks.connect_timeout":   c.SOCKS.ConnectTimeout,
		"socks.linger":            c.SOCKS.Linger,
		"socks.drain_timeout":     c.SOCKS.DrainTimeout,
		"socks.bind.timeout":      c.SOCKS.Bind.Timeout,
		"socks.udp.idle_timeout":  c.SOCKS.UDP.IdleTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%w: %s: must be a positive duration, got %s", ErrConfig, key, d)
		}
	}
	if c.SOCKS.IdleTimeout < 0 {
		return fmt.Errorf("%w: socks.idle_timeout: must be 0 (off) or a positive duration, got %s", ErrConfig, c.SOCKS.IdleTimeout)
	}
	if err := c.SOCKS.Bind.validate(); err != nil {
		return err
	}
	if err := c.SOCKS.UDP.validate(); err != nil {
		return err
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("%w: log.format: want text or json, got %q", ErrConfig, c.Log.Format)
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		if validCredential(u.Name, u.Password) != nil {
			return fmt.Errorf("%w: users[%d]: name and password must be 1-255 octets", ErrConfig, i)
		}
		if _, err := middleware.ParseRole(u.Role); err != nil {
			return fmt.Errorf("%w: users[%d].role: want admin or basic, got %q", ErrConfig, i, u.Role)
		}
		if seen[u.Name] {
			return fmt.Errorf("%w: users[%d]: duplicate user %q", ErrConfig, i, u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

func validPort(key string, p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("%w: %s: %d is out of range 0-65535", ErrConfig, key, p)
	}
	return nil
}

// ParseLevel maps the seed's log levels (DEBUG, INFO, WARN, ERROR, NONE) and
// TRACE to hclog levels, in any case.
func ParseLevel(s string) (hclog.Level, error) {
	if strings.EqualFold(s, "none") || strings.EqualFold(s, "off") {
		return hclog.Off, nil
	}
	l := hclog.LevelFromString(s)
	if l == hclog.NoLevel {
		return 0, fmt.Errorf("%w: log.level: want DEBUG, INFO, WARN, ERROR or NONE, got %q", ErrConfig, s)
	}
	return l, nil
}

// stageKey splits a setting's key, "<stage name>.<key>", into the index of
// the stage in chain and the stage's own key. Stage names may contain
// dots: the key belongs to the longest stage name that prefixes it. When
// no name matches, a stage type does (the first stage of that type), so
// "iobuf.size" still finds an iobuf stage the operator renamed. The index
// is -1 when nothing matches.
func stageKey(chain []StageConfig, key string) (int, string) {
	at, sub := -1, ""
	for i, st := range chain {
		if rest, ok := strings.CutPrefix(key, st.Name+"."); ok && (at < 0 || len(st.Name) > len(chain[at].Name)) {
			at, sub = i, rest
		}
	}
	if at >= 0 {
		return at, sub
	}
	for i, st := range chain {
		if rest, ok := strings.CutPrefix(key, st.Type+"."); ok {
			return i, rest
		}
	}
	return -1, ""
}

// KeepAliveConfig is socks.keepalive as the net package takes it, for the
// SOCKS listener and the dialer.
func (c SOCKSConfig) KeepAliveConfig() net.KeepAliveConfig {
	switch {
	case c.KeepAlive < 0:
		return net.KeepAliveConfig{Enable: false}
	case c.KeepAlive == 0:
		return net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}
	}
	return net.KeepAliveConfig{Enable: true, Idle: c.KeepAlive, Interval: c.KeepAlive, Count: -1}
}

// ListenConfig is the SOCKS listener's configuration (keep-alive).
func (c SOCKSConfig) ListenConfig() *net.ListenConfig {
	lc := &net.ListenConfig{KeepAliveConfig: c.KeepAliveConfig()}
	if !lc.KeepAliveConfig.Enable {
		lc.KeepAlive = -1 // off, as net.ListenConfig spells it
	}
	return lc
}
