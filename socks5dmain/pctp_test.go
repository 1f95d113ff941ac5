package socks5dmain

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/pctp"
	"github.com/socks5d/socks5d/pctp/pctptest"
)

var update = flag.Bool("update", false, "rewrite the proxy transcripts under pctp/testdata/proxy")

var pctpRE = regexp.MustCompile(`PCTP admin listening(?:: address=|",.*"address":")([^"\s]+)`)

// pctpAddr is the admin address the server logged.
func (s *server) pctpAddr(t *testing.T) string {
	t.Helper()
	return s.logged(t, pctpRE, "PCTP address")[1]
}

// logged waits (up to 5 s) for a line of the server's log that re matches
// and returns its submatches: the listeners are logged one after another,
// so the SOCKS line startServer waited for may come before the others.
func (s *server) logged(t *testing.T, re *regexp.Regexp, what string) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(s.log.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log:\n%s", what, s.log)
		}
	}
}

// The transcripts of pctp/testdata/proxy run against the real proxy with
// the default chain and one admin, admin/password.
func TestPCTPTranscripts(t *testing.T) {
	files, err := filepath.Glob("../pctp/testdata/proxy/*.txt")
	for i := range files {
		files[i], _ = filepath.Abs(files[i]) // startServer changes directory
	}
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	// The default chain plus an (unlimited) rate limit, whose settings the
	// CONFIG transcript changes. Each transcript gets its own config file,
	// so its own data directory and saved state.
	const chain = `
chain:
  - use: auth
  - use: accounting
  - use: connlog
  - use: iobuf
  - use: ratelimit
`
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, _ := filepath.Abs(writeConfig(t, chain))
			s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
			pctptest.RunTranscript(t, s.pctpAddr(t), f, *update)
		})
	}
}

func login(t *testing.T, addr string) *pctp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pctp.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("admin", "password"); err != nil {
		t.Fatal(err)
	}
	return c
}

func do(t *testing.T, c *pctp.Client, cmd string) pctp.Reply {
	t.Helper()
	r, err := c.Do(cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if !r.OK {
		t.Fatalf("%s: %s", cmd, r.Status)
	}
	return r
}

func stats(t *testing.T, c *pctp.Client) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, l := range do(t, c, "STATS").Lines {
		k, v, _ := strings.Cut(l, ": ")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("STATS line %q", l)
		}
		out[k] = n
	}
	return out
}

// The end-to-end scenario: users, sessions, STATS, LOGS and CONFIG
// through the real admin port and a real SOCKS client.
func TestPCTPEndToEnd(t *testing.T) {
	s := startServer(t, append([]string{"-u", "admin:password"}, loopbackArgs...)...)
	admin := login(t, s.pctpAddr(t))

	before := stats(t, admin)
	for _, key := range []string{"current_connections", "total_connections", "current_bytes_proxied", "total_bytes_proxied"} {
		if _, ok := before[key]; !ok {
			t.Fatalf("STATS lacks %s", key)
		}
	}

	// ADD BASIC bob, then bob relays through the proxy.
	do(t, admin, "ADD BASIC")
	do(t, admin, "USER bob")
	if r := do(t, admin, "PASS builder"); r.Status != "+OK Successfully added user" {
		t.Fatalf("PASS: %s", r.Status)
	}
	echo := testnet.Echo(t)
	bob, err := dialer(t, s.socks, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("bob cannot connect right after ADD: %v", err)
	}
	defer bob.Close()
	_ = bob.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("0123456789")
	_, _ = bob.Write(msg)
	buf := make([]byte, len(msg))
	if _, err := bob.Read(buf); err != nil {
		t.Fatal(err)
	}

	// DEL bob: the open connection closes, a new one is refused.
	do(t, admin, "DEL bob")
	if _, err := bob.Read(buf); err == nil {
		t.Fatal("bob's open connection survived DEL")
	}
	if _, err := dialer(t, s.socks, "bob", "builder").Dial("tcp", echo); err == nil {
		t.Fatal("deleted user could connect")
	}

	// STATS grew by exactly the connections made (bob's two) and by at
	// least the bytes moved (10 each way).
	deadline := time.Now().Add(5 * time.Second)
	after := stats(t, admin)
	for after["current_connections"] != before["current_connections"] && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		after = stats(t, admin)
	}
	if got := after["total_connections"] - before["total_connections"]; got != 2 {
		t.Errorf("total_connections grew by %d, want 2", got)
	}
	if got := after["total_bytes_proxied"] - before["total_bytes_proxied"]; got < 20 {
		t.Errorf("total_bytes_proxied grew by %d, want at least 20", got)
	}

	// LOGS shows bob's connection with its destination and port, and the
	// refused attempt. Records are added as connections end, so the two
	// may come in either order.
	_, port, _ := net.SplitHostPort(echo)
	logs := do(t, admin, "LOGS 2").Lines
	if len(logs) != 2 {
		t.Fatalf("LOGS 2 = %q", logs)
	}
	var relayed, refused bool
	for _, l := range logs {
		f := strings.Fields(l)
		if len(f) != 10 || f[2] != "A" || f[3] != "127.0.0.1" {
			t.Fatalf("LOGS line = %q", l)
		}
		relayed = relayed || (f[1] == "bob" && f[5] == "127.0.0.1" && f[6] == port && f[7] == "0" && f[8] == "20" && f[9] == "Auth")
		refused = refused || f[9] == "Failed"
	}
	if !relayed || !refused {
		t.Errorf("LOGS lacks bob's relayed connection or the refused attempt:\n%s", strings.Join(logs, "\n"))
	}

	// CONFIG IO=8000 applies to new connections, and a 16 MiB transfer
	// still checks out.
	do(t, admin, "CONFIG IO=8000")
	found := false
	for _, l := range do(t, admin, "CONFIG").Lines {
		found = found || l == "iobuf.size: 8000"
	}
	if !found {
		t.Fatal("CONFIG does not show iobuf.size: 8000")
	}
	transfer(t, dialer(t, s.socks, "admin", "password"), 16<<20)
	if got := stats(t, admin)["total_bytes_proxied"] - after["total_bytes_proxied"]; got < 32<<20 {
		t.Errorf("total_bytes_proxied grew by %d after 16 MiB each way", got)
	}
}

// The pctp client binary, driven over a pipe, runs a script against the
// real proxy and reports -ERR replies in its exit status.
func TestPCTPClientBinaryScript(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pctp")
	build := exec.Command("go", "build", "-o", bin, "../cmd/pctp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/pctp: %v\n%s", err, out)
	}
	s := startServer(t, append([]string{"-u", "admin:password"}, loopbackArgs...)...)
	host, port, _ := net.SplitHostPort(s.pctpAddr(t))
	runScript := func(script string, env ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-u", "admin")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	code, out := runScript("STATS\nLIST\nEXIT\n", "PCTP_PASSWORD=password")
	if code != 0 || !strings.Contains(out, "total_connections: ") || !strings.Contains(out, "admin\tAdmin") {
		t.Fatalf("good script: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "password\n") {
		t.Fatal("the password was printed")
	}
	if code, out := runScript("LIST\nDEL nobody\nEXIT\n", "PCTP_PASSWORD=password"); code != 1 {
		t.Fatalf("script with an -ERR: exit %d\n%s", code, out)
	}
	if code, out := runScript("LIST\n", "PCTP_PASSWORD=wrong"); code == 0 {
		t.Fatalf("wrong password: exit 0\n%s", out)
	}
}

// SESSIONS, KILL and the destination policy's RULES against the real proxy.
func TestPCTPLiveControl(t *testing.T) {
	cfg := writeConfig(t, `
chain:
  - use: auth
  - use: accounting
  - use: connlog
  - use: filter
    default: allow
    rules:
      - action: deny
        ports: [25]
`)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	admin := login(t, s.pctpAddr(t))
	echo := testnet.Echo(t)
	_, port, _ := net.SplitHostPort(echo)

	if got := do(t, admin, "RULES").Lines; len(got) != 1 || !strings.HasPrefix(got[0], "1 deny ports=25") {
		t.Fatalf("RULES = %q", got)
	}
	do(t, admin, "RULE ADD 1 deny dest=127.0.0.1 ports="+port)
	if _, err := dialer(t, s.socks, "admin", "password").Dial("tcp", echo); err == nil {
		t.Fatal("a destination denied by a rule added over PCTP was reached")
	}
	if got := do(t, admin, "RULES").Lines; len(got) != 2 || !strings.Contains(got[0], "hits=1") {
		t.Fatalf("RULES after ADD = %q", got)
	}
	if r, _ := admin.Do("RULE ADD deny dest=not/a/cidr"); r.OK {
		t.Fatal("an invalid rule was accepted")
	}
	do(t, admin, "RULE DEL 1")

	c, err := dialer(t, s.socks, "admin", "password").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("allowed again after RULE DEL: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	// The refused connection's session ends as its handler returns; on a
	// loaded machine that may take a moment.
	// Counters advance after each write returns, so wait for the upload
	// to be counted too.
	lines := do(t, admin, "SESSIONS").Lines
	for deadline := time.Now().Add(5 * time.Second); (len(lines) != 1 || !strings.Contains(lines[0], " up=4 down=4 ")) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		lines = do(t, admin, "SESSIONS").Lines
	}
	if len(lines) != 1 {
		t.Fatalf("SESSIONS = %q", lines)
	}
	f := strings.Fields(lines[0])
	if len(f) != 10 || f[1] != "admin" || f[3] != echo || f[4] != "up=4" || f[5] != "down=4" || f[9] != "listener=socks" {
		t.Fatalf("SESSIONS line = %q", lines[0])
	}
	do(t, admin, "KILL "+f[0])
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a killed session still reads")
	}
}
