package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/builtin/auth"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

const (
	attacker = "192.0.2.7"
	other    = "198.51.100.9"
)

// countingUsers counts the password checks made.
type countingUsers struct {
	mwtest.Users
	verified atomic.Int64
}

func (c *countingUsers) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	c.verified.Add(1)
	return c.Users.Verify(name, password, spend)
}

// login runs one session from client through mw, authenticating as the
// engine would, and returns the Authenticator's error.
func login(t *testing.T, mw middleware.Middleware, client, user, pass string) error {
	t.Helper()
	s, _ := mwtest.Session(t)
	s.Client = netip.AddrPortFrom(netip.MustParseAddr(client), 40000)
	var authErr error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		if !s.Auth.Accepts(middleware.MethodPassword) {
			t.Error("password method not offered")
		}
		role, err := s.Auth.Authenticate(context.Background(), user, pass)
		if authErr = err; err != nil {
			s.AuthState = middleware.AuthFailed
			return
		}
		s.User, s.Role, s.AuthState = user, role, middleware.AuthOK
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return authErr
}

func guardParams(cfg map[string]any) (middleware.Params, *countingUsers) {
	p := mwtest.Params("auth", cfg)
	u := &countingUsers{Users: users()}
	p.Users = u
	return p, u
}

func TestBannedClientRefused(t *testing.T) {
	p, u := guardParams(map[string]any{"max_failures": 2})
	mw := mwtest.New(t, auth.Type, p)

	for i := range 3 {
		err := login(t, mw, attacker, "alice", "guess")
		if !errors.Is(err, middleware.ErrBadCredentials) || errors.Is(err, auth.ErrBanned) {
			t.Fatalf("failure %d: err = %v, want ErrBadCredentials only", i+1, err)
		}
	}
	if got := stat(t, mw, "auth_bans"); got != 1 {
		t.Fatalf("auth_bans = %d after 3 failures with max_failures 2, want 1", got)
	}

	// The right password from the banned address is refused unchecked,
	// for any user.
	checked := u.verified.Load()
	for _, c := range []struct{ user, pass string }{{"alice", "wonderland"}, {"admin", "s3cret"}} {
		err := login(t, mw, attacker, c.user, c.pass)
		if !errors.Is(err, auth.ErrBanned) || !errors.Is(err, middleware.ErrBadCredentials) {
			t.Errorf("banned %s: err = %v, want ErrBanned and ErrBadCredentials", c.user, err)
		}
		if err != nil && strings.Contains(err.Error(), c.pass) {
			t.Errorf("error %q reveals the password", err)
		}
	}
	if got := u.verified.Load(); got != checked {
		t.Errorf("%d password checks for a banned client, want none", got-checked)
	}

	// The right password from another address is unaffected.
	if err := login(t, mw, other, "alice", "wonderland"); err != nil {
		t.Errorf("another address with the right password: %v", err)
	}

	for key, want := range map[string]int64{"failed_auths": 5, "auth_bans": 1, "auth_banned_now": 1} {
		if got := stat(t, mw, key); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}
}

func TestBannedIPv6Neighbour(t *testing.T) {
	p, _ := guardParams(map[string]any{"max_failures": 1})
	mw := mwtest.New(t, auth.Type, p)
	_ = login(t, mw, "2001:db8:5:6::1", "alice", "x")
	_ = login(t, mw, "2001:db8:5:6::2", "alice", "y")
	if err := login(t, mw, "2001:db8:5:6:abcd::3", "alice", "wonderland"); !errors.Is(err, auth.ErrBanned) {
		t.Errorf("same /64: err = %v, want ErrBanned", err)
	}
	if err := login(t, mw, "2001:db8:5:7::1", "alice", "wonderland"); err != nil {
		t.Errorf("next /64: %v", err)
	}
}

func TestSuccessDoesNotClearFailures(t *testing.T) {
	p, _ := guardParams(map[string]any{"max_failures": 3})
	mw := mwtest.New(t, auth.Type, p)
	for range 3 {
		_ = login(t, mw, attacker, "admin", "guess")
	}
	// A good account interleaved does not reset the count.
	if err := login(t, mw, attacker, "alice", "wonderland"); err != nil {
		t.Fatalf("right password before the ban: %v", err)
	}
	if err := login(t, mw, attacker, "admin", "guess"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := login(t, mw, attacker, "alice", "wonderland"); !errors.Is(err, auth.ErrBanned) {
		t.Errorf("after the 4th failure: err = %v, want ErrBanned", err)
	}
}

func TestGuardOff(t *testing.T) {
	p, _ := guardParams(map[string]any{"max_failures": 0})
	mw := mwtest.New(t, auth.Type, p)
	for range 50 {
		if err := login(t, mw, attacker, "alice", "guess"); errors.Is(err, auth.ErrBanned) {
			t.Fatal("banned with the guard off")
		}
	}
	if err := login(t, mw, attacker, "alice", "wonderland"); err != nil {
		t.Errorf("right password with the guard off: %v", err)
	}
	for key, want := range map[string]int64{"failed_auths": 50, "auth_bans": 0, "auth_banned_now": 0} {
		if got := stat(t, mw, key); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}
}

func TestGuardSurvivesRebuild(t *testing.T) {
	p, _ := guardParams(map[string]any{"max_failures": 2})
	mw := mwtest.New(t, auth.Type, p)
	_ = login(t, mw, attacker, "alice", "a")
	_ = login(t, mw, attacker, "alice", "b")

	// A live change rebuilds the stage with the same pool: the failures
	// count on, and the ban holds in both the new and the old stage.
	p.Config = map[string]any{"max_failures": 2, "ban": "10m", "max_ban": "2h"}
	mw2 := mwtest.New(t, auth.Type, p)
	_ = login(t, mw2, attacker, "alice", "c")
	for i, m := range []middleware.Middleware{mw2, mw} {
		if err := login(t, m, attacker, "alice", "wonderland"); !errors.Is(err, auth.ErrBanned) {
			t.Errorf("stage %d: err = %v, want ErrBanned", i, err)
		}
		if got := stat(t, m, "auth_bans"); got != 1 {
			t.Errorf("stage %d: auth_bans = %d, want 1", i, got)
		}
	}
}

// failRegex is the fail2ban failregex the README gives for hclog's text
// format, with fail2ban's <HOST> turned into a Go group. fail2ban matches
// it against the line with the time cut out.
const failRegex = `^\s*\[WARN\]\s+(?:\S+\.)?middleware\.auth: authentication failed: listener=socks client_ip=<HOST> user=`

// failRegexJSON is the README's failregex for hclog's JSON format (keys
// sorted, so client_ip comes before the user name).
const failRegexJSON = `^\{"@level":"warn","@message":"authentication failed","@module":"(?:[^"]+\.)?middleware\.auth",.*"client_ip":"<HOST>","listener":"socks",`

var hclogTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:Z|[+-]\d{4}) `)

func TestFailureLogLine(t *testing.T) {
	var buf bytes.Buffer
	p, _ := guardParams(map[string]any{"max_failures": 2})
	p.Logger = hclog.New(&hclog.LoggerOptions{Name: "socks5d.middleware.auth", Output: &buf, Level: hclog.Info})
	mw := mwtest.New(t, auth.Type, p)

	const secret = "hunter2-Secret"
	evil := "eve\" client_ip=203.0.113.66 banned=false\nforged"
	_ = login(t, mw, attacker, "alice", secret)
	_ = login(t, mw, attacker, evil, secret+"2")
	if err := login(t, mw, other, "alice", "wonderland"); err != nil { // a success logs nothing
		t.Fatal(err)
	}
	_ = login(t, mw, attacker, "bob", secret+"3")     // starts the ban
	_ = login(t, mw, attacker, "alice", "wonderland") // refused while banned
	_ = login(t, mw, "2001:db8::5", "", "")           // empty name, IPv6

	out := buf.String()
	for _, pw := range []string{secret, "wonderland"} {
		if strings.Contains(out, pw) {
			t.Fatalf("the log holds a password (%q):\n%s", pw, out)
		}
	}

	var failures []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, "authentication failed") {
			failures = append(failures, strings.TrimSuffix(line, "\n"))
		}
	}
	const pre = "[WARN]  socks5d.middleware.auth: authentication failed: listener=socks "
	want := []string{
		pre + `client_ip=192.0.2.7 user="alice" banned=false`,
		pre + `client_ip=192.0.2.7 user="eve\" client_ip=203.0.113.66 banned=false\nforged" banned=false`,
		pre + `client_ip=192.0.2.7 user="bob" banned=true`,
		pre + `client_ip=192.0.2.7 user="alice" banned=true`,
		pre + `client_ip=2001:db8::5 user="" banned=false`,
	}
	if len(failures) != len(want) {
		t.Fatalf("%d failure lines, want one per failure (%d):\n%s", len(failures), len(want), out)
	}
	re := regexp.MustCompile(strings.Replace(failRegex, "<HOST>", `(?P<host>[0-9A-Fa-f.:]+)`, 1))
	wantHost := []string{attacker, attacker, attacker, attacker, "2001:db8::5"}
	for i, line := range failures {
		ts := hclogTime.FindString(line)
		if ts == "" {
			t.Errorf("line %d has no hclog time: %q", i, line)
		}
		rest := strings.TrimPrefix(line, ts)
		if rest != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, rest, want[i])
		}
		m := re.FindStringSubmatch(rest)
		if m == nil || m[1] != wantHost[i] {
			t.Errorf("failregex on line %d: host %v, want %s", i, m, wantHost[i])
		}
	}
	if !strings.Contains(out, "address banned: listener=socks client_ip=192.0.2.7 group=192.0.2.7/32 for=1m0s until=") {
		t.Errorf("no line for the ban:\n%s", out)
	}
}

func TestFailureLogLineJSON(t *testing.T) {
	var buf bytes.Buffer
	p, _ := guardParams(map[string]any{"max_failures": 1})
	p.Logger = hclog.New(&hclog.LoggerOptions{Name: "middleware.auth", Output: &buf, JSONFormat: true})
	mw := mwtest.New(t, auth.Type, p)
	_ = login(t, mw, attacker, "alice", "pw-one")
	_ = login(t, mw, attacker, "eve\",\"client_ip\":\"203.0.113.66\",\"listener\":\"socks\",", "pw-two")
	if strings.Contains(buf.String(), "pw-") {
		t.Fatalf("the log holds a password:\n%s", buf.String())
	}
	re := regexp.MustCompile(strings.Replace(failRegexJSON, "<HOST>", `(?P<host>[0-9A-Fa-f.:]+)`, 1))
	var got []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		match := re.FindStringSubmatch(line)
		if m["@message"] != "authentication failed" {
			if match != nil {
				t.Errorf("failregex matches %s", line)
			}
			continue
		}
		got = append(got, m)
		if match == nil || match[1] != attacker {
			t.Errorf("failregex on %s: %v, want host %s", line, match, attacker)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d failure records, want 2", len(got))
	}
	names := []string{"alice", `eve","client_ip":"203.0.113.66","listener":"socks",`}
	for i, banned := range []bool{false, true} {
		m := got[i]
		if m["@level"] != "warn" || m["@module"] != "middleware.auth" || m["@timestamp"] == nil ||
			m["listener"] != "socks" || m["client_ip"] != attacker || m["user"] != names[i] || m["banned"] != banned {
			t.Errorf("record %d = %v", i, m)
		}
	}
}
