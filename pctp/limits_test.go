package pctp_test

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// dialFrom opens a raw connection to addr from the local address from (any
// of 127.0.0.0/8 is local on Linux, no setup needed).
func dialFrom(t *testing.T, addr, from string) *raw {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return wrapRaw(t, c)
}

// holdSilent opens n connections that never send a byte, from the
// addresses from(i) gives, and keeps them open until the test ends.
func holdSilent(t *testing.T, addr string, n int, from func(i int) string) {
	t.Helper()
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from(i))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("silent connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// The server accepts in order: once a later connection is answered,
	// all of these have been admitted.
	probe := dialFrom(t, addr, "127.0.0.254")
	probe.send("EXIT\n")
	probe.expect("+OK Done\n")
	probe.Close()
}

// loginAndStats logs in on c and runs STATS.
func loginAndStats(c *raw) {
	c.t.Helper()
	c.login()
	c.send("STATS\n")
	c.expect("+OK Sending stats...\n")
	for i := 0; c.line() != "\n"; i++ {
		if i > 100 {
			c.t.Fatal("STATS reply does not end")
		}
	}
}

// A local user holding 150 silent connections, from the administrator's
// own address or spread over many, cannot keep an administrator from
// logging in: sessions that have not logged in have a pool of their own,
// bounded per address, whose holders lose their oldest connections first.
func TestSilentConnectionsDoNotLockOut(t *testing.T) {
	for name, from := range map[string]func(int) string{
		"same address":      func(int) string { return "127.0.0.1" },
		"other address":     func(int) string { return "127.0.0.2" },
		"spread over a /24": func(i int) string { return "127.0.1." + strconv.Itoa(1+i%250) },
		"spread over /24s":  func(i int) string { return "127.0." + strconv.Itoa(2+i) + ".1" },
	} {
		t.Run(name, func(t *testing.T) {
			addr := serve(t, &pctp.Server{})
			holdSilent(t, addr, 150, from)
			loginAndStats(dialFrom(t, addr, "127.0.0.1"))
		})
	}
}

// An administrator who connected before the flood keeps the connection:
// when the pool is full, it drops the oldest sessions of the address
// holding the most (here with no limit per address, so that the pool's
// own limit is what acts).
func TestWaitingPoolDropsTheBusiestAddress(t *testing.T) {
	addr := serve(t, &pctp.Server{MaxWaitingPerSource: -1})
	admin := dialFrom(t, addr, "127.0.0.1")
	admin.send("HELP\n") // make sure the server has admitted it
	admin.expect("+OK Sending help...\n")
	for admin.line() != "\n" {
	}
	holdSilent(t, addr, 150, func(int) string { return "127.0.0.2" })
	loginAndStats(admin)
}

// A session that does not log in within LoginTimeout is closed; by default
// that is well under the 30 s it used to be.
func TestDefaultLoginTimeout(t *testing.T) {
	if pctp.DefaultLoginTimeout > 10*time.Second {
		t.Fatalf("DefaultLoginTimeout = %v, want at most 10s", pctp.DefaultLoginTimeout)
	}
}

// checks is how many passwords the fake Admin has checked.
func (f *fakeAdmin) checks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

// guess sends USER name and the given passwords on c and returns the
// replies to the PASS lines.
func guess(c *raw, name string, passwords ...string) []string {
	c.t.Helper()
	var b strings.Builder
	b.WriteString("USER " + name + "\n")
	for _, p := range passwords {
		b.WriteString("PASS " + p + "\n")
	}
	c.send(b.String())
	c.expect("+OK Please send password\n")
	out := make([]string, len(passwords))
	for i := range passwords {
		out[i] = c.line()
	}
	return out
}

// parallelGuesses runs sessions sessions at once, from the addresses from
// gives, each guessing three passwords for admin, and returns every reply.
func parallelGuesses(t *testing.T, addr string, sessions int, from func(i int) string) []string {
	t.Helper()
	conns := make([]*raw, sessions)
	for i := range conns {
		conns[i] = dialFrom(t, addr, from(i))
	}
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range conns {
		wg.Go(func() {
			<-start
			r := guess(c, "admin", "wrong1", "wrong2", "wrong3")
			mu.Lock()
			all = append(all, r...)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return all
}

const (
	invalid = "-ERR Invalid credentials\n"
	locked  = "-ERR Too many failed logins, try again later\n"
)

// Parallel sessions share one budget per source, an IPv4 /24: 40 sessions
// making 3 guesses each get 5 password checks in all, whether they come
// from one address or from 40 in the same /24. The lockout is logged once,
// counted in STATS, and refuses even the right password without checking
// it.
func TestLoginBudgetPerSource(t *testing.T) {
	for name, from := range map[string]func(int) string{
		"one address":       func(int) string { return "127.0.0.1" },
		"spread over a /24": func(i int) string { return "127.0.1." + strconv.Itoa(1+i) },
	} {
		t.Run(name, func(t *testing.T) {
			fake := newFakeAdmin()
			var logs syncBuffer
			addr := serve(t, &pctp.Server{
				Admin:      fake,
				Logger:     hclog.New(&hclog.LoggerOptions{Output: &logs}),
				MaxWaiting: 64, MaxWaitingPerSource: 64,
				LoginLimits: pctp.LoginLimits{SourceFailures: 5, UserFailures: 1000},
			})
			replies := parallelGuesses(t, addr, 40, from)
			counts := map[string]int{}
			for _, r := range replies {
				counts[r]++
			}
			if counts[invalid] != 5 || counts[locked] != 115 || fake.checks() != 5 {
				t.Fatalf("120 guesses: %d checked, replies %v; want 5 checked, 5 %q and the rest %q", fake.checks(), counts, invalid, locked)
			}
			// The right password is refused too, without a check.
			c := dialFrom(t, addr, from(0))
			if r := guess(c, "admin", "password"); r[0] != locked || fake.checks() != 5 {
				t.Fatalf("right password while locked out: %q after %d checks", r[0], fake.checks())
			}
			// Another source is not locked out.
			if r := guess(dialFrom(t, addr, "127.0.9.1"), "admin", "password"); r[0] != "+OK Successfully logged in\n" {
				t.Fatalf("another /24: %q", r[0])
			}
			lines := 0
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "login locked out") {
					lines++
					if !strings.Contains(l, "[WARN]") || !strings.Contains(l, "listener=pctp source=127.0.") || !strings.Contains(l, "/24 for=1m0s") {
						t.Errorf("lockout line: %q", l)
					}
				}
				if strings.Contains(l, "wrong") || strings.Contains(l, "password\"") {
					t.Errorf("a password in the log: %q", l)
				}
			}
			if lines != 1 {
				t.Errorf("%d lockout lines, want 1:\n%s", lines, logs.String())
			}
			if n := statsValue(t, addr, "127.0.8.1", "pctp_lockouts"); n != "1" {
				t.Errorf("pctp_lockouts = %s, want 1", n)
			}
		})
	}
}

// Guesses at one user name from different sources share that name's
// budget: once it is used up, the name is locked out everywhere (even the
// right password is refused unchecked), while other names are not.
func TestLoginBudgetPerUser(t *testing.T) {
	fake := newFakeAdmin()
	var logs syncBuffer
	addr := serve(t, &pctp.Server{
		Admin:       fake,
		Logger:      hclog.New(&hclog.LoggerOptions{Output: &logs}),
		LoginLimits: pctp.LoginLimits{SourceFailures: 1000, UserFailures: 3},
	})
	for i := range 3 {
		if r := guess(dialFrom(t, addr, "127.0."+strconv.Itoa(10+i)+".1"), "admin", "wrong"); r[0] != invalid {
			t.Fatalf("guess %d: %q", i, r[0])
		}
	}
	before := fake.checks()
	if r := guess(dialFrom(t, addr, "127.0.20.1"), "admin", "password"); r[0] != locked || fake.checks() != before {
		t.Fatalf("locked-out name, right password, new source: %q, %d checks (was %d)", r[0], fake.checks(), before)
	}
	if r := guess(dialFrom(t, addr, "127.0.20.1"), "nobody", "x"); r[0] != invalid {
		t.Fatalf("another name: %q", r[0])
	}
	if !strings.Contains(logs.String(), `login locked out: listener=pctp user="admin" for=1m0s`) {
		t.Errorf("no lockout line for the name:\n%s", logs.String())
	}
}

// A BASIC user's right password is refused byte for byte like a wrong one
// and counted against the budget like one.
func TestBasicLoginIsAFailure(t *testing.T) {
	fake := newFakeAdmin()
	if err := fake.AddUser("bob", "bobpass", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &pctp.Server{Admin: fake, LoginLimits: pctp.LoginLimits{SourceFailures: 2, UserFailures: 1000}})
	c := dialFrom(t, addr, "127.0.0.1")
	r := guess(c, "bob", "bobpass", "wrong", "bobpass")
	if r[0] != invalid || r[1] != invalid || r[2] != locked {
		t.Fatalf("BASIC user: %q", r)
	}
	if n := statsValue(t, addr, "127.0.7.1", "pctp_failed_logins"); n != "3" {
		t.Errorf("pctp_failed_logins = %s, want 3", n)
	}
}

// statsValue logs in from the address from and returns one STATS value.
func statsValue(t *testing.T, addr, from, key string) string {
	t.Helper()
	c := dialFrom(t, addr, from)
	c.login()
	c.send("STATS\n")
	c.expect("+OK Sending stats...\n")
	val := ""
	for i := 0; ; i++ {
		l := c.line()
		if l == "\n" || i > 100 {
			break
		}
		if k, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), ": "); k == key {
			val = v
		}
	}
	return val
}

// A burst of right passwords from one source, more than its budget, is
// checked a few at a time, never refused: only failures use the budget up.
func TestLoginBurstWithinBudget(t *testing.T) {
	const n = 20
	fake := newFakeAdmin()
	fake.slow = 20 * time.Millisecond
	addr := serve(t, &pctp.Server{
		Admin:      fake,
		MaxWaiting: n, MaxWaitingPerSource: n,
		LoginLimits: pctp.LoginLimits{SourceFailures: 2, UserFailures: 2},
	})
	conns := make([]*raw, n)
	for i := range conns {
		conns[i] = dialFrom(t, addr, "127.0.0.1")
	}
	replies := make([]string, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { replies[i] = guess(c, "admin", "password")[0] })
	}
	wg.Wait()
	for i, r := range replies {
		if r != "+OK Successfully logged in\n" {
			t.Errorf("login %d of %d at once: %q", i+1, n, r)
		}
	}
}
