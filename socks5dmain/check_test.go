package socks5dmain

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCheck runs `socks5d -t` in process with args, from an empty working
// directory, and returns its exit status and output.
func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Chdir(t.TempDir())
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code = ExitCode(RunContext(ctx, append([]string{"-t"}, args...), &out, &errOut), &errOut)
	return code, out.String(), errOut.String()
}

// -t refuses what start-up could not use, naming the key: before, a bare
// duration, a fractional port and a listen address typo all passed -t.
func TestCheckRefusesWhatStartUpCannotUse(t *testing.T) {
	garbage := writeConfig(t, lcAliceConfig)
	statePath := filepath.Join(filepath.Dir(garbage), "data", "state.json")
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, []byte(`{"version": 1}garbage`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"bare duration", []string{"-c", writeConfig(t, lcAliceConfig+"socks:\n  handshake_timeout: 10\n")}, []string{"socks.handshake_timeout", "write 10s"}},
		{"tiny timeout", []string{"-c", writeConfig(t, lcAliceConfig+"socks:\n  connect_timeout: 1ms\n")}, []string{"socks.connect_timeout", "out of range"}},
		{"fractional port", []string{"-c", writeConfig(t, lcAliceConfig+"socks:\n  port: 40540.5\n")}, []string{"socks.port", "whole number"}},
		{"address typo", []string{"-c", writeConfig(t, lcAliceConfig+"socks:\n  address: 127.0.0.300\n")}, []string{"socks.address", "not an IP address"}},
		{"address typo from -L", []string{"-u", "a:b", "-L", "127.0.0.300"}, []string{"pctp.address", "flag -L"}},
		{"listeners collide", []string{"-u", "a:b", "-l", "127.0.0.1", "-p", "9999", "-P", "9999"}, []string{"pctp.port", "socks.port"}},
		{"password not a string", []string{"-c", writeConfig(t, "users:\n  - {name: alice, password: 0x10, role: admin}\n")}, []string{"users[0].password: must be a string; quote it"}},
		{"state with trailing garbage", []string{"-c", garbage}, []string{statePath, "after the JSON object"}},
		{"etcd unreachable and no copy", []string{"-c", writeConfig(t, lcAliceConfig+"store: {kind: etcd, endpoints: [\""+closedAddr(t)+"\"], dial_timeout: 200ms}\n")}, []string{"etcd unreachable at start and no local copy", "did not answer within 200ms"}},
		{"store prefix", []string{"-c", writeConfig(t, lcAliceConfig+"store: {kind: etcd, endpoints: [\"127.0.0.1:2379\"], prefix: socks5d}\n")}, []string{"store.prefix", "starts and ends with /"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCheck(t, tt.args...)
			if code != 2 || strings.Contains(out, "configuration OK") {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// Start-up (and -t) warns, one WARN line each, about a plaintext admin
// port off loopback, plaintext passwords in a file others can read and a
// state file looser than 0600.
func TestCheckWarnings(t *testing.T) {
	cfg := writeConfig(t, lcAliceConfig)
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(filepath.Dir(cfg), "data", "state.json")
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, []byte(`{"version": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(statePath, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCheck(t, "-c", cfg, "-L", "0.0.0.0", "-P", "0", "-p", "0")
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"PCTP admin port is not on loopback", "plaintext passwords", "state file permissions"} {
		var line string
		for _, l := range strings.Split(errOut, "\n") {
			if strings.Contains(l, want) {
				line = l
			}
		}
		if !strings.Contains(line, "[WARN]") {
			t.Errorf("no WARN line saying %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "wonderland") {
		t.Errorf("a warning shows the password:\n%s", errOut)
	}

	// Tightened, it is quiet.
	if err := os.Chmod(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(statePath, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCheck(t, "-c", cfg, "-P", "0", "-p", "0")
	if code != 0 || strings.Contains(errOut, "[WARN]") {
		t.Errorf("exit %d, want 0 and no warning\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// Live changes are held to the file's rules: a duration needs a unit and
// its range (CONFIG auth.ban_memory=1e300 became a negative duration), and
// a -u user cannot be deleted (DEL answered +OK, and the next reload
// brought the user back).
func TestPCTPRefusesWhatCannotHold(t *testing.T) {
	s := startServer(t, append([]string{"-u", "admin:password", "-u", "root:secret"}, loopbackArgs...)...)
	admin := login(t, s.pctpAddr(t))
	for _, tt := range []struct{ cmd, want string }{
		{"CONFIG socks.handshake_timeout=10", "write 10s"},
		{"CONFIG socks.linger=1ns", "out of range"},
		{"CONFIG auth.ban_memory=1e300", "ban_memory"},
		{"CONFIG auth.ban_memory=10", "write 10s"},
		{"DEL root", "-u"},
	} {
		r, err := admin.Do(tt.cmd)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s → %s", tt.cmd, r.Status)
		if r.OK || !strings.Contains(r.Status, tt.want) {
			t.Errorf("%s: %s, want -ERR saying %q", tt.cmd, r.Status, tt.want)
		}
	}
	settings := strings.Join(do(t, admin, "CONFIG").Lines, "\n")
	for _, want := range []string{"socks.handshake_timeout: 10s", "socks.linger: 1m0s", "auth.ban_memory: 24h0m0s"} {
		if !strings.Contains(settings, want) {
			t.Errorf("CONFIG does not list %q after refused changes:\n%s", want, settings)
		}
	}
	if users := strings.Join(do(t, admin, "LIST").Lines, "\n"); !strings.Contains(users, "root") {
		t.Errorf("LIST after a refused DEL:\n%s", users)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
