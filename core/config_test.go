package core

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
