package core

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	// Instance names this instance in a fleet: the instance_name label of
	// every metric. Default: the host name and the SOCKS port (see
	// InstanceName).
	Instance string `koanf:"instance_name"`

	SOCKS SOCKSConfig `koanf:"socks"`
	PCTP  PCTPConfig  `koanf:"pctp"`
	// Metrics is the Prometheus endpoint, off by default.
	Metrics MetricsConfig `koanf:"metrics"`
	Log     LogConfig     `koanf:"log"`
	Users   []UserConfig  `koanf:"users"`
	// Store is where administrative changes are kept (store_config.go).
	Store StoreConfig `koanf:"store"`
	// Chain is the ordered middleware chain (the `chain:` list).
	Chain []StageConfig `koanf:"-"`
	// Listeners are front doors beside the `socks:` listener (the
	// `listeners:` list; listeners.go).
	Listeners []ListenerConfig `koanf:"listeners"`
	// Chains are named chains a listener may choose (the `chains:`
	// mapping of name to a list like `chain:`).
	Chains map[string][]StageConfig `koanf:"-"`
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
	// ProxyProtocol takes the client's address from a PROXY protocol
	// header sent by a trusted load balancer (proxyproto.go).
	ProxyProtocol ProxyProtocolConfig `koanf:"proxy_protocol"`
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
	// Ports is the range the client-facing relay port is taken from: 0
	// (any ephemeral port), a port, or "low-high", written as a number
	// or as text.
	Ports middleware.PortRange `koanf:"ports"`
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
	// TLS, when its files are set, makes the admin port speak TLS.
	TLS TLSFiles `koanf:"tls"`
}

// MetricsConfig is the Prometheus /metrics listener.
type MetricsConfig struct {
	Enabled bool   `koanf:"enabled"`
	Address string `koanf:"address"`
	Port    int    `koanf:"port"`
	// Pprof also serves Go's profiles (net/http/pprof) under
	// /debug/pprof/ on the same listener. Off by default: profiles show
	// the server's internals (stacks, heap, command line) to whoever
	// reaches the listener.
	Pprof bool `koanf:"pprof"`
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
	m := map[string]any{
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
	storeDefaults(m)
	return m
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

	// `chain` and `chains` are decoded by hand, in order, from the raw lists.
	chainRaw := k.Get("chain")
	k.Delete("chain")
	chainsRaw := k.Get("chains")
	k.Delete("chains")
	cfg := &Config{Source: path}
	if err := decodeConfig(k.Raw(), cfg); err != nil {
		return nil, err
	}
	chain, err := parseChain("chain", chainRaw)
	if err != nil {
		return nil, err
	}
	cfg.Chain = chain
	if cfg.Chains, err = parseChains(chainsRaw); err != nil {
		return nil, err
	}
	for _, u := range o.Users {
		name, pass, ok := strings.Cut(u, ":")
		if !ok {
			return nil, fmt.Errorf("%w: flag -u: want user:password", ErrConfig)
		}
		if err := validCredential(name, pass); err != nil {
			return nil, fmt.Errorf("%w: flag -u: %w", ErrConfig, err)
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

// parseChain reads a chain's list (the `chain:` list, or one of
// `chains:`, named key in errors), in order.
func parseChain(key string, raw any) ([]StageConfig, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: want a list of stages (- use: TYPE), got %T", ErrConfig, key, raw)
	}
	out := make([]StageConfig, 0, len(list))
	seen := map[string]bool{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d]: want a mapping with use: TYPE", ErrConfig, key, i)
		}
		st := StageConfig{Config: map[string]any{}}
		for k, v := range m {
			switch k {
			case "use", "name":
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("%w: %s[%d].%s: must be a string; quote it (the file has %s)", ErrConfig, key, i, k, kindOf(v))
				}
				if k == "use" {
					st.Type = s
				} else {
					st.Name = s
				}
			default:
				st.Config[k] = v
			}
		}
		if st.Type == "" {
			return nil, fmt.Errorf("%w: %s[%d]: missing use: (known types: %s)", ErrConfig, key, i, strings.Join(middleware.Types(), ", "))
		}
		if st.Name == "" {
			st.Name = st.Type
		}
		if seen[st.Name] {
			return nil, fmt.Errorf("%w: %s[%d]: duplicate stage name %q (give one a different name:)", ErrConfig, key, i, st.Name)
		}
		seen[st.Name] = true
		out = append(out, st)
	}
	return out, nil
}

func (c *Config) validate() error {
	if err := c.validateListeners(); err != nil {
		return err
	}
	if err := c.validateFrontDoors(); err != nil {
		return err
	}
	for _, kd := range []struct {
		key string
		d   time.Duration
	}{
		{"socks.handshake_timeout", c.SOCKS.HandshakeTimeout},
		{"socks.connect_timeout", c.SOCKS.ConnectTimeout},
		{"socks.linger", c.SOCKS.Linger},
		{"socks.idle_timeout", c.SOCKS.IdleTimeout},
		{"socks.drain_timeout", c.SOCKS.DrainTimeout},
		{"socks.keepalive", c.SOCKS.KeepAlive},
		{"socks.bind.timeout", c.SOCKS.Bind.Timeout},
		{"socks.udp.idle_timeout", c.SOCKS.UDP.IdleTimeout},
	} {
		if err := durationRuleOf(kd.key).check(kd.d); err != nil {
			return &KeyError{Key: kd.key, Err: err}
		}
	}
	if err := c.SOCKS.Bind.validate(); err != nil {
		return err
	}
	if err := c.SOCKS.UDP.validate(); err != nil {
		return err
	}
	if err := c.SOCKS.ProxyProtocol.validate(); err != nil {
		return err
	}
	if err := validateInstanceName(c.Instance); err != nil {
		return err
	}
	for key, n := range map[string]int{
		"socks.udp.max_associations": c.SOCKS.UDP.MaxAssociations,
		"socks.udp.per_user":         c.SOCKS.UDP.PerUser,
	} {
		if n > maxUDPAssociations {
			return keyError(key, "%d is out of range 0-%d", n, maxUDPAssociations)
		}
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		return err
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("%w: log.format: want text or json, got %q", ErrConfig, c.Log.Format)
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		if err := validCredential(u.Name, u.Password); err != nil {
			return fmt.Errorf("%w: users[%d]: %w", ErrConfig, i, err)
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

// maxUDPAssociations bounds socks.udp.max_associations and per_user:
// each association holds sockets, far fewer than this fit in a process.
const maxUDPAssociations = 1 << 20

func validPort(key string, p int) error {
	if p < 0 || p > 65535 {
		return keyError(key, "%d is out of range 0-65535", p)
	}
	return nil
}

// validateListeners checks what start-up needs to listen: every address
// an IP (or localhost, or empty for every address), every port in range,
// and no two listeners on the same port of overlapping addresses (the
// metrics listener counts only when enabled).
func (c *Config) validateListeners() error {
	type listener struct {
		name, address string
		port          int
		on            bool
	}
	ls := []listener{
		{"socks", c.SOCKS.Address, c.SOCKS.Port, true},
		{"pctp", c.PCTP.Address, c.PCTP.Port, true},
		{"metrics", c.Metrics.Address, c.Metrics.Port, c.Metrics.Enabled},
	}
	for i, l := range c.Listeners {
		ls = append(ls, listener{fmt.Sprintf("listeners[%d]", i), l.Address, l.Port, true})
	}
	for i, a := range ls {
		if err := validListenAddress(a.name+".address", a.address); err != nil {
			return err
		}
		if err := validPort(a.name+".port", a.port); err != nil {
			return err
		}
		for _, b := range ls[:i] {
			if a.on && b.on && a.port != 0 && a.port == b.port && addressesOverlap(a.address, b.address) {
				return keyError(a.name+".port", "%d is also %s.port on an overlapping address (%q, %q): each listener needs its own port", a.port, b.name, a.address, b.address)
			}
		}
	}
	return nil
}

// validListenAddress accepts an IP address without brackets or port,
// "localhost", or "" (every address). Anything else, a name or a typo
// such as 127.0.0.300, is refused rather than sent to DNS at start.
func validListenAddress(key, a string) error {
	if _, err := listenAddr(a); err != nil {
		return keyError(key, "%q is not an IP address (want e.g. 127.0.0.1, ::1, 0.0.0.0 or localhost, without brackets or port; empty listens on every address)", a)
	}
	return nil
}

// listenAddr parses a listener's address; "" and "::" are the unspecified
// IPv6 address (Go listens on both families there), localhost is
// 127.0.0.1 (what Go listens on for that name).
func listenAddr(a string) (netip.Addr, error) {
	switch {
	case a == "":
		return netip.IPv6Unspecified(), nil
	case strings.EqualFold(a, "localhost"):
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	ip, err := netip.ParseAddr(a)
	return ip.Unmap(), err
}

// addressesOverlap reports whether listening on the same port of a and b
// (valid listener addresses) would collide.
func addressesOverlap(a, b string) bool {
	x, _ := listenAddr(a)
	y, _ := listenAddr(b)
	switch {
	case x == y:
		return true
	case x == netip.IPv6Unspecified() || y == netip.IPv6Unspecified():
		return true // both families
	case x == netip.IPv4Unspecified():
		return y.Is4()
	case y == netip.IPv4Unspecified():
		return x.Is4()
	}
	return false
}

// ParseLevel maps the seed's log levels (DEBUG, INFO, WARN, ERROR, NONE) and
// TRACE to hclog levels, in any case.
func ParseLevel(s string) (hclog.Level, error) {
	if strings.EqualFold(s, "none") || strings.EqualFold(s, "off") {
		return hclog.Off, nil
	}
	l := hclog.LevelFromString(s)
	if l == hclog.NoLevel {
		return 0, keyError("log.level", "want DEBUG, INFO, WARN, ERROR or NONE, got %q", s)
	}
	return l, nil
}

// stageKey splits a setting's key, "<stage name>.<key>", into the index of
// the stage in chain and the stage's own key. Stage names may contain
// dots: the key belongs to the longest stage name that prefixes it. The
// index is -1 when nothing matches. (An admin protocol that names a
// setting by what it is for, as PCTP's CONFIG IO= does, asks
// Admin.Purpose for its key.)
func stageKey(chain []StageConfig, key string) (int, string) {
	at, sub := -1, ""
	for i, st := range chain {
		if rest, ok := strings.CutPrefix(key, st.Name+"."); ok && (at < 0 || len(st.Name) > len(chain[at].Name)) {
			at, sub = i, rest
		}
	}
	return at, sub
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

// ListenConfig is the SOCKS listener's configuration: keep-alive for the
// accepted connections and, on Linux, TCP_DEFER_ACCEPT (listen_linux.go).
func (c SOCKSConfig) ListenConfig() *net.ListenConfig {
	return listenConfig(c.KeepAliveConfig())
}
