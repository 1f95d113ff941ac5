package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// admin is a minimal pctp.Admin: users admin/password (ADMIN) and
// bob/bobpass (BASIC), fixed statistics, no records.
type admin struct {
	mu    sync.Mutex
	users map[string]string
	io    string
	// For the top view: the open sessions and per-user numbers shown.
	sessions  []middleware.SessionInfo
	userStats map[string][]middleware.Stat
}

var _ pctp.Admin = (*admin)(nil)

// The client's tests need no lists.
func (a *admin) Kill(uint64) error                    { return errors.New("no such session") }
func (a *admin) KillUser(string) int                  { return 0 }
func (a *admin) Items(string) ([]string, error)       { return nil, errors.New("no such list") }
func (a *admin) InsertItem(string, int, string) error { return errors.New("no such list") }
func (a *admin) DeleteItem(string, int) error         { return errors.New("no such list") }

// Purpose has the IO size only.
func (a *admin) Purpose(p middleware.Purpose, stage string) (string, error) {
	if p == middleware.PurposeIOSize && stage == "" {
		return "iobuf.size", nil
	}
	return "", errors.New("no such purpose")
}

func (a *admin) Sessions() []middleware.SessionInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions
}

func (a *admin) Quotas() ([]middleware.QuotaUsage, bool) { return nil, false }
func (a *admin) ResetQuota(string) (bool, error)         { return false, nil }

func (a *admin) UserStats(name string) ([]middleware.Stat, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.userStats[name]
	return st, ok
}

func (a *admin) Login(user, password string) (middleware.Role, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	pw, ok := a.users[user]
	if subtle.ConstantTimeCompare([]byte(pw), []byte(password)) != 1 || !ok {
		return 0, false
	}
	if user == "bob" {
		return middleware.RoleBasic, true
	}
	return middleware.RoleAdmin, true
}

func (a *admin) Stats() []middleware.Stat {
	return []middleware.Stat{{Key: "current_connections", Value: 1}, {Key: "total_connections", Value: 2},
		{Key: "current_bytes_proxied", Value: 3}, {Key: "total_bytes_proxied", Value: 4}}
}
func (a *admin) Records(int) []middleware.Record { return nil }
func (a *admin) Settings() []middleware.Setting {
	a.mu.Lock()
	defer a.mu.Unlock()
	return []middleware.Setting{{Key: "iobuf.size", Value: a.io}}
}
func (a *admin) Set(key, value string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if key != "iobuf.size" {
		return errors.New("unknown setting")
	}
	a.io = value
	return nil
}
func (a *admin) Users() []middleware.User {
	return []middleware.User{{Name: "admin", Role: middleware.RoleAdmin}, {Name: "bob", Role: middleware.RoleBasic}}
}
func (a *admin) AddUser(string, string, middleware.Role) error { return errors.New("read-only") }
func (a *admin) DeleteUser(string) error                       { return errors.New("read-only") }

// server runs a real pctp.Server with the fake admin and returns its port.
func server(t *testing.T) string {
	t.Helper()
	return serverWith(t, &admin{users: map[string]string{"admin": "password", "bob": "bobpass"}, io: "4096"})
}

// serverWith runs a real pctp.Server with a and returns its port.
func serverWith(t *testing.T, a *admin) string {
	t.Helper()
	return serveOn(t, a, nil)
}

// serveOn runs a real pctp.Server with a on a listener that wrap (when
// not nil) wraps, and returns its port.
func serveOn(t *testing.T, a *admin, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := &pctp.Server{
		Admin:      a,
		LoginDelay: func(int) time.Duration { return 0 },
	}
	served := ln
	if wrap != nil {
		served = wrap(ln)
	}
	go func() {
		defer close(done)
		srv.Serve(ctx, served)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// pctpRun runs the client over a pipe-like stdin and returns its exit
// status and outputs.
func pctpRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestScript(t *testing.T) {
	port := server(t)
	script := "# a comment\nUSER admin\n\nPASS password\r\nSTATS\nCONFIG IO=8000\n  CONFIG\nEXIT\nSTATS\n"
	code, out, errOut := pctpRun(t, script, "-h", "127.0.0.1", "-p", port)
	want := "+OK Please send password\n" +
		"+OK Successfully logged in\n" +
		"+OK Sending stats...\ncurrent_connections: 1\ntotal_connections: 2\ncurrent_bytes_proxied: 3\ntotal_bytes_proxied: 4\npctp_failed_logins: 0\npctp_lockouts: 0\n\n" +
		"+OK Setting IO buffers size\n" +
		"+OK Sending settings...\niobuf.size: 8000\n\n" +
		"+OK Done\n"
	if code != exitOK || out != want {
		t.Fatalf("exit %d, stderr %q\nstdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}

func TestScriptErr(t *testing.T) {
	port := server(t)
	for name, script := range map[string]string{
		"wrong password": "USER admin\nPASS wrong\n",
		"basic user":     "USER bob\nPASS bobpass\n",
		"later error":    "USER admin\nPASS password\nLOGS x\nSTATS\n",
		"unknown":        "NOOP\n",
	} {
		t.Run(name, func(t *testing.T) {
			code, out, _ := pctpRun(t, script, "-h", "127.0.0.1", "-p", port)
			if code != exitFailed || !strings.Contains(out, "-ERR ") {
				t.Fatalf("exit %d, want %d; stdout:\n%s", code, exitFailed, out)
			}
		})
	}
}

func TestLoginFlag(t *testing.T) {
	port := server(t)
	t.Setenv(passwordEnv, "password")
	code, out, errOut := pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", port, "-u", "admin")
	if code != exitOK || out != "+OK Sending user list...\nadmin\tAdmin\nbob\tBasic\n\n" {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	t.Setenv(passwordEnv, "wrong")
	code, _, errOut = pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", port, "-u", "admin")
	if code != exitFailed || !strings.Contains(errOut, "Invalid credentials") || strings.Contains(errOut, "wrong") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, errOut)
	}
	t.Setenv(passwordEnv, "")
	code, _, errOut = pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", port, "-u", "admin")
	if code != exitUsage || !strings.Contains(errOut, passwordEnv) {
		t.Fatalf("no password: exit %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-x"}, {"-p"}, {"-p", "0"}, {"-p", "65536"}, {"-p", "http"}, {"-d", "LOUD"},
		{"-h", ""}, {"extra"}, {"-u"},
	} {
		code, out, errOut := pctpRun(t, "", args...)
		if code != exitUsage || out != "" || errOut == "" {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
	for _, args := range [][]string{{"-help"}, {"--help"}} {
		code, out, _ := pctpRun(t, "", args...)
		if code != exitOK || !strings.HasPrefix(out, "usage: pctp [-h HOST]") {
			t.Errorf("%q: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	code, _, errOut := pctpRun(t, "STATS\n", "-h", "127.0.0.1", "-p", port)
	if code != exitConnect || !strings.Contains(errOut, "cannot connect") {
		t.Fatalf("exit %d, want %d (stderr %q)", code, exitConnect, errOut)
	}
}

// TestServerGoesAway: a session the server closes mid-script exits 1.
func TestServerGoesAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	code, _, errOut := pctpRun(t, "STATS\n", "-h", "127.0.0.1", "-p", port)
	if code != exitFailed || errOut == "" {
		t.Fatalf("exit %d, want %d (stderr %q)", code, exitFailed, errOut)
	}
}

func TestDebugLogNamesNoPassword(t *testing.T) {
	port := server(t)
	code, _, errOut := pctpRun(t, "USER admin\nPASS password\nEXIT\n", "-h", "127.0.0.1", "-p", port, "-d", "DEBUG")
	if code != exitOK || !strings.Contains(errOut, "cmd=PASS") || strings.Contains(errOut, "password") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}
