package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no configs/proxy.yaml here
	cfg, err := LoadConfig(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != "" {
		t.Errorf("Source = %q, want built-in defaults", cfg.Source)
	}
	if cfg.SOCKS.Port != 1080 || cfg.PCTP.Port != 8080 || cfg.PCTP.Address != "127.0.0.1" {
		t.Errorf("ports/addresses = %+v %+v", cfg.SOCKS, cfg.PCTP)
	}
	if cfg.SOCKS.HandshakeTimeout != 10*time.Second || cfg.SOCKS.ConnectTimeout != 10*time.Second {
		t.Errorf("timeouts = %+v", cfg.SOCKS)
	}
	var types []string
	for _, st := range cfg.Chain {
		types = append(types, st.Type)
	}
	if strings.Join(types, ",") != strings.Join(DefaultChain(), ",") {
		t.Errorf("chain = %v, want %v", types, DefaultChain())
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	file := writeFile(t, `
socks:
  port: 2000
  address: 127.0.0.1
log:
  level: DEBUG
users:
  - {name: alice, password: wonder, role: basic}
  - {name: admin, password: fromfile, role: basic}
chain:
  - use: iobuf
    size: 8000
  - use: auth
    anonymous: true
  - use: iobuf
    name: second
`)
	cfg, err := LoadConfig(LoadOptions{
		File:    file,
		Environ: []string{"SOCKS5D_SOCKS__PORT=3000", "SOCKS5D_SOCKS__CONNECT_TIMEOUT=3s", "OTHER=1"},
		Flags:   map[string]any{"socks.port": "4000"},
		Users:   []string{"admin:fromflag", "root:x:y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SOCKS.Port != 4000 {
		t.Errorf("flag should win: port = %d", cfg.SOCKS.Port)
	}
	if cfg.SOCKS.ConnectTimeout != 3*time.Second {
		t.Errorf("env should override file: connect_timeout = %s", cfg.SOCKS.ConnectTimeout)
	}
	if cfg.SOCKS.Address != "127.0.0.1" || cfg.Log.Level != "DEBUG" {
		t.Errorf("file values lost: %+v %+v", cfg.SOCKS, cfg.Log)
	}
	// The chain keeps file order and names.
	if len(cfg.Chain) != 3 || cfg.Chain[0].Type != "iobuf" || cfg.Chain[1].Type != "auth" || cfg.Chain[2].Name != "second" {
		t.Fatalf("chain = %+v", cfg.Chain)
	}
	if cfg.Chain[0].Config["size"] != 8000 || cfg.Chain[1].Config["anonymous"] != true {
		t.Errorf("stage settings = %+v", cfg.Chain)
	}
	// -u users are admins and replace a file user of the same name; the
	// password may contain colons.
	got := map[string]UserConfig{}
	for _, u := range cfg.Users {
		got[u.Name] = u
	}
	if got["admin"].Password != "fromflag" || got["admin"].Role != "admin" || got["root"].Password != "x:y" || got["alice"].Role != "basic" {
		t.Errorf("users = %+v", cfg.Users)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		opts LoadOptions
		want string // the error must name this
	}{
		{name: "unknown key", yaml: "socks:\n  prot: 1\n", want: "prot"},
		{name: "unknown top-level key", yaml: "sock: {}\n", want: "sock"},
		{name: "port out of range", yaml: "socks:\n  port: 70000\n", want: "socks.port"},
		{name: "port not a number", yaml: "socks:\n  port: abc\n", want: "socks.port"},
		{name: "negative pctp port", yaml: "pctp:\n  port: -1\n", want: "pctp.port"},
		{name: "bad duration", yaml: "socks:\n  connect_timeout: soon\n", want: "connect_timeout"},
		{name: "zero duration", yaml: "socks:\n  handshake_timeout: 0s\n", want: "handshake_timeout"},
		{name: "bad level", yaml: "log:\n  level: LOUD\n", want: "log.level"},
		{name: "bad format", yaml: "log:\n  format: xml\n", want: "log.format"},
		{name: "bad role", yaml: "users:\n  - {name: a, password: b, role: root}\n", want: "users[0].role"},
		{name: "empty password", yaml: "users:\n  - {name: a, password: '', role: basic}\n", want: "users[0]"},
		{name: "duplicate user", yaml: "users:\n  - {name: a, password: b, role: basic}\n  - {name: a, password: c, role: basic}\n", want: "duplicate user"},
		{name: "unknown user key", yaml: "users:\n  - {name: a, pass: b}\n", want: "pass"},
		{name: "chain not a list", yaml: "chain:\n  auth: {}\n", want: "chain"},
		{name: "chain entry without use", yaml: "chain:\n  - size: 1\n", want: "chain[0]: missing use"},
		{name: "duplicate stage name", yaml: "chain:\n  - use: auth\n  - use: auth\n", want: "duplicate stage name"},
		{name: "malformed yaml", yaml: "socks: [\n", want: "proxy.yaml"},
		{name: "bad -u", opts: LoadOptions{Users: []string{"nopassword"}}, want: "-u"},
		{name: "missing file", opts: LoadOptions{File: "/nonexistent/proxy.yaml"}, want: "/nonexistent/proxy.yaml"},
		{name: "bad store kind", yaml: "store: {kind: redis}\n", want: "store.kind"},
		{name: "etcd without endpoints", yaml: "store: {kind: etcd}\n", want: "store.endpoints"},
		{name: "bad etcd endpoint", yaml: "store: {kind: etcd, endpoints: [\"nohost\"]}\n", want: "store.endpoints[0]"},
		{name: "bad store prefix", yaml: "store: {kind: etcd, endpoints: [\"127.0.0.1:2379\"], prefix: socks5d}\n", want: "store.prefix"},
		{name: "etcd user without password", yaml: "store: {kind: etcd, endpoints: [\"127.0.0.1:2379\"], username: u}\n", want: "store.username"},
		{name: "bad env", opts: LoadOptions{Environ: []string{"SOCKS5D_SOCKS__PORT=x"}}, want: "socks.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			o := tt.opts
			if tt.yaml != "" {
				o.File = writeFile(t, tt.yaml)
			}
			_, err := LoadConfig(o)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigFindsDefaultFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultConfigFile), []byte("socks:\n  port: 1999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cfg, err := LoadConfig(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != DefaultConfigFile || cfg.SOCKS.Port != 1999 {
		t.Fatalf("source %q port %d", cfg.Source, cfg.SOCKS.Port)
	}
}

func TestKeepAliveSetting(t *testing.T) {
	for _, tt := range []struct {
		value  time.Duration
		enable bool
		idle   time.Duration
	}{
		{0, true, -1}, // on, the system's timing
		{30 * time.Second, true, 30 * time.Second},
		{-time.Second, false, 0}, // off
	} {
		ka := SOCKSConfig{KeepAlive: tt.value}.KeepAliveConfig()
		if ka.Enable != tt.enable || (tt.enable && ka.Idle != tt.idle) {
			t.Errorf("keepalive %v: %+v", tt.value, ka)
		}
		lc := SOCKSConfig{KeepAlive: tt.value}.ListenConfig()
		if !tt.enable && lc.KeepAlive >= 0 {
			t.Errorf("keepalive %v: listener keep-alive not off", tt.value)
		}
	}
	cfg, err := LoadConfig(LoadOptions{File: writeFile(t, "socks:\n  keepalive: 45s\n")})
	if err != nil || cfg.SOCKS.KeepAlive != 45*time.Second {
		t.Fatalf("socks.keepalive from a file: %v, %v", cfg, err)
	}
}

// yamlKey writes "a.b.c: v" as nested YAML.
func yamlKey(key, value string) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + value)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// envName is the SOCKS5D_ variable for key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

func loadErr(t *testing.T, o LoadOptions) error {
	t.Helper()
	_, err := LoadConfig(o)
	if err != nil && !errors.Is(err, ErrConfig) {
		t.Errorf("error does not wrap ErrConfig: %v", err)
	}
	return err
}

// A duration without a unit was read as nanoseconds (handshake_timeout:
// 10 reset every client, and -t said OK). Every duration key refuses it,
// from the file and from the environment, naming the key; so does a
// value below the key's minimum or above its maximum.
func TestLoadConfigDurationsNeedAUnit(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, r := range durationRules {
		t.Run(r.key, func(t *testing.T) {
			for _, tt := range []struct {
				from, value, want string
			}{
				{"file", "10", "write 10s"},
				{"file", "1.5", "write 1.5s"},
				{"file", "1e300", "without a unit"},
				{"file", ".inf", "without a unit"},
				{"file", "1ns", "out of range"},
				{"file", "100000h", "out of range"},
				{"file", "true", "must be a duration"},
				{"env", "10", "write 10s"},
				{"env", "1ms", "out of range"},
			} {
				o := LoadOptions{File: writeFile(t, yamlKey(r.key, tt.value))}
				if tt.from == "env" {
					o = LoadOptions{Environ: []string{envName(r.key) + "=" + tt.value}}
				}
				err := loadErr(t, o)
				if err == nil || !strings.Contains(err.Error(), r.key) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s %s=%s: err = %v, want it to name the key and say %q", tt.from, r.key, tt.value, err, tt.want)
				}
			}
			// The minimum itself is valid, from the file and the environment.
			if _, err := LoadConfig(LoadOptions{File: writeFile(t, yamlKey(r.key, r.min.String()))}); err != nil {
				t.Errorf("%s: %s: %v", r.key, r.min, err)
			}
			if _, err := LoadConfig(LoadOptions{Environ: []string{envName(r.key) + "=" + r.max.String()}}); err != nil {
				t.Errorf("%s: %s: %v", r.key, r.max, err)
			}
		})
	}
	// The values tests and samples use stay valid; 0 means off where
	// documented, a negative keepalive turns it off.
	cfg, err := LoadConfig(LoadOptions{File: writeFile(t, "socks:\n  handshake_timeout: 300ms\n  idle_timeout: 0\n  keepalive: -1s\n  linger: 300ms\n  drain_timeout: 300ms\n")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SOCKS.HandshakeTimeout != 300*time.Millisecond || cfg.SOCKS.IdleTimeout != 0 || cfg.SOCKS.KeepAlive != -time.Second {
		t.Errorf("socks = %+v", cfg.SOCKS)
	}
}

// Numbers must be whole and in range: port 40540.5 was accepted and
// listened on 40540.
func TestLoadConfigNumbersStrict(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		name string
		o    LoadOptions
		want []string
	}{
		{"fractional port", LoadOptions{File: writeFile(t, "socks:\n  port: 40540.5\n")}, []string{"socks.port", "whole number"}},
		{"fractional port from env", LoadOptions{Environ: []string{"SOCKS5D_PCTP__PORT=8080.5"}}, []string{"pctp.port", "whole number"}},
		{"hex port from env", LoadOptions{Environ: []string{"SOCKS5D_SOCKS__PORT=0x438"}}, []string{"socks.port", "whole number"}},
		{"fractional port from a flag", LoadOptions{Flags: map[string]any{"socks.port": "1080.0"}}, []string{"socks.port", "whole number"}},
		{"huge port", LoadOptions{File: writeFile(t, "metrics:\n  port: 1e300\n")}, []string{"metrics.port"}},
		{"boolean port", LoadOptions{File: writeFile(t, "socks:\n  port: true\n")}, []string{"socks.port", "whole number"}},
		{"too many udp associations", LoadOptions{File: writeFile(t, "socks:\n  udp:\n    max_associations: 99999999999\n")}, []string{"socks.udp.max_associations", "out of range"}},
		{"fractional per_user", LoadOptions{File: writeFile(t, "socks:\n  udp:\n    per_user: 2.5\n")}, []string{"socks.udp.per_user", "whole number"}},
		{"bool as a number", LoadOptions{File: writeFile(t, "metrics:\n  enabled: 1\n")}, []string{"metrics.enabled", "true or false"}},
		{"bool as yes", LoadOptions{Environ: []string{"SOCKS5D_METRICS__ENABLED=yes"}}, []string{"metrics.enabled", "true or false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := loadErr(t, tt.o)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
		})
	}
	cfg, err := LoadConfig(LoadOptions{Environ: []string{"SOCKS5D_SOCKS__PORT=1081", "SOCKS5D_METRICS__ENABLED=true"}})
	if err != nil || cfg.SOCKS.Port != 1081 || !cfg.Metrics.Enabled {
		t.Fatalf("whole numbers and booleans from the environment: %+v, %v", cfg, err)
	}
}

// String keys decode exactly as written or are refused naming the key:
// the YAML parser read password: 0x10 as 16, 000123 as 83, .inf as +Inf
// and true as a boolean, and weak decoding turned them into "16", "83",
// "+Inf" and "1". The refusal must not show the value (it is a password).
func TestLoadConfigStringsAsWritten(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, v := range []string{"true", "0x10", "000123", ".inf", "12", "1.5", "null", "[a]", "{a: b}"} {
		file := writeFile(t, "users:\n  - {name: alice, password: "+v+", role: basic}\n")
		err := loadErr(t, LoadOptions{File: file})
		if err == nil || !strings.Contains(err.Error(), "users[0].password") {
			t.Errorf("password: %s: err = %v, want it to name users[0].password", v, err)
			continue
		}
		for _, leak := range []string{"16", "83", "Inf", "12", "1.5"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("password: %s: the error shows the value: %v", v, err)
			}
		}
	}
	for _, tt := range []struct{ yaml, key string }{
		{"users:\n  - {name: 123, password: x, role: basic}\n", "users[0].name"},
		{"users:\n  - {name: a, password: x, role: true}\n", "users[0].role"},
		{"log:\n  level: 1\n", "log.level"},
		{"data_dir: 5\n", "data_dir"},
		{"socks:\n  address: 0\n", "socks.address"},
		{"chain:\n  - use: 5\n", "chain[0].use"},
		{"chain:\n  - use: auth\n    name: true\n", "chain[0].name"},
	} {
		err := loadErr(t, LoadOptions{File: writeFile(t, tt.yaml)})
		if err == nil || !strings.Contains(err.Error(), tt.key+": must be a string; quote it") {
			t.Errorf("%q: err = %v, want %s: must be a string; quote it", tt.yaml, err, tt.key)
		}
	}
	// Quoted, each is kept exactly.
	file := writeFile(t, `users:
  - {name: "0x10", password: "000123", role: basic}
  - {name: "true", password: ".inf", role: admin}
  - {name: b, password: "0x10", role: basic}
`)
	cfg, err := LoadConfig(LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(cfg.Users[0].Name, cfg.Users[0].Password, cfg.Users[1].Name, cfg.Users[1].Password, cfg.Users[2].Password)
	if want := fmt.Sprint("0x10", "000123", "true", ".inf", "0x10"); got != want {
		t.Errorf("users = %+v, want exactly as written", cfg.Users)
	}
}

// Listener addresses are IP addresses (or localhost, or empty): a typo
// such as 127.0.0.300 was sent to DNS at start.
func TestLoadConfigListenAddresses(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		name string
		o    LoadOptions
		want string
	}{
		{"dotted typo", LoadOptions{File: writeFile(t, "socks:\n  address: 127.0.0.300\n")}, "socks.address"},
		{"typo from -L", LoadOptions{Flags: map[string]any{"pctp.address": "127.0.0.300"}}, "pctp.address"},
		{"short dotted", LoadOptions{Environ: []string{"SOCKS5D_METRICS__ADDRESS=127.1"}}, "metrics.address"},
		{"a host name", LoadOptions{File: writeFile(t, "pctp:\n  address: proxy.invalid\n")}, "pctp.address"},
		{"brackets", LoadOptions{File: writeFile(t, "socks:\n  address: '[::1]'\n")}, "socks.address"},
		{"with a port", LoadOptions{File: writeFile(t, "socks:\n  address: 127.0.0.1:1080\n")}, "socks.address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := loadErr(t, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "not an IP address") {
				t.Errorf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
	for _, a := range []string{"127.0.0.1", "::1", "0.0.0.0", "::", "", "localhost", "LocalHost", "::ffff:127.0.0.1"} {
		if _, err := LoadConfig(LoadOptions{Flags: map[string]any{"socks.address": a}}); err != nil {
			t.Errorf("socks.address %q: %v", a, err)
		}
	}
}

// Start-up opens up to three listeners: two on the same port of
// overlapping addresses cannot both listen, so -t refuses it.
func TestLoadConfigListenerCollision(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		yaml string
		ok   bool
	}{
		{"socks: {address: 127.0.0.1, port: 9000}\npctp: {address: 127.0.0.1, port: 9000}\n", false},
		{"socks: {address: 0.0.0.0, port: 9000}\npctp: {address: 127.0.0.1, port: 9000}\n", false},
		{"socks: {address: '::', port: 9000}\npctp: {address: 127.0.0.1, port: 9000}\n", false},
		{"socks: {address: localhost, port: 9000}\npctp: {address: 127.0.0.1, port: 9000}\n", false},
		{"socks: {port: 9180}\nmetrics: {enabled: true}\n", false},
		{"socks: {port: 9180}\nmetrics: {enabled: false}\n", true},
		{"socks: {address: 127.0.0.1, port: 9000}\npctp: {address: 127.0.0.2, port: 9000}\n", true},
		{"socks: {address: 0.0.0.0, port: 9000}\npctp: {address: '::1', port: 9000}\n", true},
		{"socks: {address: 127.0.0.1, port: 0}\npctp: {address: 127.0.0.1, port: 0}\n", true},
	} {
		_, err := LoadConfig(LoadOptions{File: writeFile(t, tt.yaml)})
		if tt.ok && err != nil {
			t.Errorf("%q: %v", tt.yaml, err)
		}
		if !tt.ok && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), ".port")) {
			t.Errorf("%q: err = %v, want a collision naming the port key", tt.yaml, err)
		}
	}
}

// The unknown-key error is built from the keys themselves, not from a
// decoder's wording.
func TestLoadConfigUnknownKeyNamesKnown(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct{ yaml, want string }{
		{"socks:\n  bind:\n    timout: 5s\n", `socks.bind: unknown key "timout" (known: address, timeout)`},
		{"users:\n  - {name: a, password: b, role: basic}\n  - {name: c, pass: d}\n", `users[1]: unknown key "pass" (known: name, password, role)`},
		{"sock: {}\n", `unknown top-level key "sock" (known: chain, chains, data_dir, instance_name, listeners, log, metrics, pctp, socks, store, users)`},
	} {
		err := loadErr(t, LoadOptions{File: writeFile(t, tt.yaml)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %s", tt.yaml, err, tt.want)
		}
	}
	err := loadErr(t, LoadOptions{Environ: []string{"SOCKS5D_SOCKS__TIMEOUT=5s"}})
	if err == nil || !strings.Contains(err.Error(), `socks: unknown key "timeout"`) {
		t.Errorf("env: err = %v", err)
	}
}

// A key with no value is refused rather than read as zero; a section whose
// keys are all commented out is fine.
func TestLoadConfigEmptyValue(t *testing.T) {
	t.Chdir(t.TempDir())
	err := loadErr(t, LoadOptions{File: writeFile(t, "socks:\n  idle_timeout:\n")})
	if err == nil || !strings.Contains(err.Error(), "socks.idle_timeout: no value") {
		t.Errorf("err = %v", err)
	}
	// An empty section would drop every default under it.
	err = loadErr(t, LoadOptions{File: writeFile(t, "socks:\n  # port: 1081\n")})
	if err == nil || !strings.Contains(err.Error(), "socks: no value") {
		t.Errorf("empty section: err = %v", err)
	}
	if _, err := LoadConfig(LoadOptions{File: writeFile(t, "users:\n")}); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

// PCTP CONFIG reads engine durations as the file does: a unit is needed,
// the key's range holds, and a refused value changes nothing, saved
// state included.
func TestSetEngineSettingStrict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	rt, err := NewRuntime(testConfig(stage("test.auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UseStore(NewFileStore(path)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("socks.connect_timeout", "3s"); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(path)
	for _, tt := range []struct{ key, value, want string }{
		{"socks.handshake_timeout", "10", "write 10s"},
		{"socks.connect_timeout", "1e300", "without a unit"},
		{"socks.linger", "1ns", "out of range"},
		{"socks.drain_timeout", "1000000h", "out of range"},
		{"socks.idle_timeout", "-5s", "out of range"},
		{"socks.handshake_timeout", "0", "out of range"},
	} {
		err := rt.Admin().Set(tt.key, tt.value)
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%s, %s) = %v, want ErrBadValue naming the key and saying %q", tt.key, tt.value, err, tt.want)
		}
	}
	if got := setting(rt, "socks.connect_timeout"); got != "3s" {
		t.Errorf("connect_timeout = %s after refused changes", got)
	}
	if now, _ := os.ReadFile(path); string(now) != string(saved) {
		t.Errorf("a refused change was saved:\n%s", now)
	}
	if err := rt.Admin().Set("socks.idle_timeout", "0"); err != nil || setting(rt, "socks.idle_timeout") != "0s" {
		t.Errorf("idle_timeout 0 (off): %v", err)
	}
}

// Errors about one key carry it as a *KeyError, so cmd names the flag
// that set it without reading the message.
func TestLoadConfigKeyError(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		o   LoadOptions
		key string
	}{
		{LoadOptions{Flags: map[string]any{"socks.port": "70000"}}, "socks.port"},
		{LoadOptions{Flags: map[string]any{"socks.port": "1.5"}}, "socks.port"},
		{LoadOptions{Flags: map[string]any{"pctp.address": "127.0.0.300"}}, "pctp.address"},
		{LoadOptions{Flags: map[string]any{"log.level": "LOUD"}}, "log.level"},
		{LoadOptions{Flags: map[string]any{"pctp.port": "1080"}}, "pctp.port"},
		{LoadOptions{File: writeFile(t, "users:\n  - {name: a, password: true, role: basic}\n")}, "users[0].password"},
		{LoadOptions{File: writeFile(t, "socks:\n  linger: 10\n")}, "socks.linger"},
		{LoadOptions{File: writeFile(t, "socks:\n  linger: 1ms\n")}, "socks.linger"},
	} {
		_, err := LoadConfig(tt.o)
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != tt.key || !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want a *KeyError for %s", tt.o, err, tt.key)
		}
	}
}
