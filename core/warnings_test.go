package core

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartupWarnings(t *testing.T) {
	hash, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, name, body string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	plain := "users:\n  - {name: alice, password: wonderland, role: basic}\n"
	hashed := "users:\n  - {name: alice, password: '" + hash + "', role: basic}\n"
	for _, tt := range []struct {
		name      string
		file      string
		fileMode  os.FileMode
		pctp      string
		pctpTLS   bool
		flagUser  bool
		state     os.FileMode // 0: no state file
		want      []string    // one warning each, by a word of its message
		wantNoArg string      // must appear in no warning
	}{
		{name: "quiet", pctp: "127.0.0.1", file: plain, fileMode: 0o600, state: 0o600},
		{name: "localhost is loopback", pctp: "localhost", file: plain, fileMode: 0o600},
		{name: "ipv6 loopback", pctp: "::1"},
		{name: "pctp on every address", pctp: "0.0.0.0", want: []string{"PCTP admin port is not on loopback and runs without TLS"}},
		{name: "pctp on every address with TLS", pctp: "0.0.0.0", pctpTLS: true},
		{name: "pctp on a LAN address with TLS", pctp: "192.0.2.1", pctpTLS: true},
		{name: "pctp on the wildcard", pctp: "", want: []string{"PCTP"}},
		{name: "pctp on a LAN address", pctp: "192.0.2.1", want: []string{"PCTP"}},
		{name: "plaintext readable by others", pctp: "127.0.0.1", file: plain, fileMode: 0o644, want: []string{"plaintext passwords"}, wantNoArg: "wonderland"},
		{name: "plaintext readable by the group", pctp: "127.0.0.1", file: plain, fileMode: 0o640, want: []string{"plaintext passwords"}},
		{name: "hashes readable by others", pctp: "127.0.0.1", file: hashed, fileMode: 0o644},
		{name: "loose state file", pctp: "127.0.0.1", state: 0o644, want: []string{"state file"}},
		{name: "group-writable state file", pctp: "127.0.0.1", state: 0o620, want: []string{"state file"}},
		{name: "all three", pctp: "::", file: plain, fileMode: 0o604, state: 0o640, want: []string{"PCTP", "plaintext passwords", "state file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{PCTP: PCTPConfig{Address: tt.pctp}}
			if tt.pctpTLS {
				cfg.PCTP.TLS = TLSFiles{Cert: "proxy.pem", Key: "proxy.key"}
			}
			if tt.file != "" {
				cfg.Source = write(t, "proxy.yaml", tt.file, tt.fileMode)
				loaded, err := LoadConfig(LoadOptions{File: cfg.Source, Flags: map[string]any{"pctp.address": tt.pctp}})
				if err != nil {
					t.Fatal(err)
				}
				cfg = loaded
			}
			statePath := filepath.Join(t.TempDir(), "state.json")
			if tt.state != 0 {
				statePath = write(t, "state.json", `{"version": 1}`, tt.state)
			}
			ws := StartupWarnings(cfg, statePath)
			if len(ws) != len(tt.want) {
				t.Fatalf("warnings = %+v, want %d (%v)", ws, len(tt.want), tt.want)
			}
			for i, w := range ws {
				line := w.Msg
				for _, a := range w.Args {
					if s, ok := a.(string); ok {
						line += " " + s
					}
				}
				if !strings.Contains(w.Msg, tt.want[i]) || strings.Contains(w.Msg, "\n") {
					t.Errorf("warning %d = %q, want one line about %s", i, w.Msg, tt.want[i])
				}
				if tt.wantNoArg != "" && strings.Contains(line, tt.wantNoArg) {
					t.Errorf("warning shows a password: %s", line)
				}
			}
		})
	}
}

// A user given with -u has its password on the command line, not in the
// file: a readable file holding only hashes and -u users is no warning.
func TestStartupWarningsIgnoreFlagUsers(t *testing.T) {
	t.Chdir(t.TempDir())
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte("log: {level: INFO}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(LoadOptions{File: p, Users: []string{"admin:password"}})
	if err != nil {
		t.Fatal(err)
	}
	if ws := StartupWarnings(cfg, filepath.Join(t.TempDir(), "state.json")); len(ws) != 0 {
		t.Errorf("warnings = %+v", ws)
	}
}

// A PROXY protocol trusted list that trusts every address (0.0.0.0/0,
// ::/0) is warned about; a list of balancers is not.
func TestStartupWarningsProxyTrustsEveryone(t *testing.T) {
	for _, tt := range []struct {
		trusted []string
		want    int
	}{{nil, 0}, {[]string{"10.0.0.0/8", "2001:db8::1"}, 0}, {[]string{"0.0.0.0/0"}, 1}, {[]string{"10.0.0.1", "::/0", "0.0.0.0/0"}, 2}} {
		cfg := &Config{PCTP: PCTPConfig{Address: "127.0.0.1"}}
		cfg.SOCKS.ProxyProtocol.Trusted = tt.trusted
		n := 0
		for _, w := range StartupWarnings(cfg, filepath.Join(t.TempDir(), "state.json")) {
			if strings.Contains(w.Msg, "trusts every address") {
				n++
			}
		}
		if n != tt.want {
			t.Errorf("trusted %v: %d warnings, want %d", tt.trusted, n, tt.want)
		}
	}
}
