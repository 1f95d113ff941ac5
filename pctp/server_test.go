package pctp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/internal/testlog"
	"github.com/socks5d/socks5d/pctp"
)

func TestCRLFInLFOut(t *testing.T) {
	c := dialRaw(t, serve(t, &pctp.Server{}))
	c.send("USER admin\r\nPASS password\r\nLIST\r\nEXIT\r\n")
	got, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	want := "+OK Please send password\n+OK Successfully logged in\n" +
		"+OK Sending user list...\nadmin\tAdmin\n\n+OK Done\n"
	if string(got) != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestLineLimit(t *testing.T) {
	c := dialRaw(t, serve(t, &pctp.Server{}))
	c.login()
	// Exactly 1024 octets is a line: LOGS with a huge N means all records.
	line := "LOGS " + strings.Repeat("9", pctp.MaxLine-len("LOGS "))
	c.send(line + "\r\n")
	c.expect("+OK Sending logs...\n")
	for c.line() != "\n" {
	}
	// 1025 octets is not, with LF or CR LF; the session stays usable.
	c.send(line + "9\n")
	c.expect("-ERR Line too long (max 1024 octets)\n")
	c.send(line + "9\r\n")
	c.expect("-ERR Line too long (max 1024 octets)\n")
	c.send("EXIT\n")
	c.expect("+OK Done\n")
}

// TestHugeLineWithoutLF sends 1 MiB without LF: the server answers -ERR as
// soon as the line is too long, discards the rest up to the LF, and goes on.
func TestHugeLineWithoutLF(t *testing.T) {
	c := dialRaw(t, serve(t, &pctp.Server{}))
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(bytes.Repeat([]byte("A"), 1<<20))
		sent <- err
	}()
	c.expect("-ERR Line too long (max 1024 octets)\n")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	c.send("still the same line\nUSER admin\n")
	c.expect("+OK Please send password\n")
}

func TestBinaryGarbage(t *testing.T) {
	c := dialRaw(t, serve(t, &pctp.Server{}))
	rng := rand.New(rand.NewPCG(1, 2))
	var buf []byte
	lines := 0
	for range 200 {
		n := rng.IntN(300)
		for range n {
			b := byte(rng.IntN(256))
			// No LF inside a line, and no ASCII letters, so no line can
			// be a command by chance.
			for b == '\n' || ('A' <= b && b <= 'Z') || ('a' <= b && b <= 'z') {
				b = byte(rng.IntN(256))
			}
			buf = append(buf, b)
		}
		buf = append(buf, '\n')
		lines++
	}
	go c.Write(buf)
	for range lines {
		c.expect("-ERR Unknown command\n")
	}
	c.login()
}

// TestDisconnectMidCommand: clients that go away in the middle of a line,
// of the ADD dialogue or of a multi-line reply leave the server working.
func TestDisconnectMidCommand(t *testing.T) {
	srv := &pctp.Server{}
	addr := serve(t, srv)
	for _, input := range []string{
		"STA",
		"USER admin\nPASS pass",
		"USER admin\nPASS password\nADD BASIC\nUSER half\n",
		"USER admin\nPASS password\nLOGS\nLOGS\nLOGS\nSTATS\nHELP\n",
		strings.Repeat("X", 5000),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, input)
		c.Close()
	}
	c := dialRaw(t, addr)
	c.login()
	c.send("LIST\n")
	c.expect("+OK Sending user list...\n")
	c.expect("admin\tAdmin\n") // the abandoned "half" was never added
	c.expect("\n")
}

// TestManySessions runs 50 admin sessions at once. They all connect from
// one address at the same instant, so the pool of sessions waiting for
// login is sized for them.
func TestManySessions(t *testing.T) {
	const n = 50
	addr := serve(t, &pctp.Server{MaxWaiting: n, MaxWaitingPerSource: n})
	var ready, wg sync.WaitGroup
	ready.Add(n)
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			c, err := pctp.Dial(context.Background(), addr)
			if err != nil {
				ready.Done()
				errs <- err
				return
			}
			defer c.Close()
			err = c.Login("admin", "password")
			ready.Done()
			ready.Wait() // all 50 logged in at once
			if err != nil {
				errs <- err
				return
			}
			for _, cmd := range []string{"STATS", "LOGS 3", "LIST", "CONFIG", "EXIT"} {
				r, err := c.Do(cmd)
				if err != nil || !r.OK {
					errs <- errors.Join(err, errors.New(cmd+": "+r.Status))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMaxSessions: MaxSessions counts logged-in sessions; a login beyond
// it is refused and closed, and a slot freed is usable again.
func TestMaxSessions(t *testing.T) {
	addr := serve(t, &pctp.Server{MaxSessions: 2})
	var in []*raw
	for range 2 {
		c := dialRaw(t, addr)
		c.login()
		in = append(in, c)
	}
	c := dialRaw(t, addr)
	c.send("HELP\n") // not logged in: not counted
	c.expect("+OK Sending help...\n")
	for c.line() != "\n" {
	}
	c.send("USER admin\nPASS password\n")
	c.expect("+OK Please send password\n")
	c.expect("-ERR Too many sessions\n")
	c.expectEOF()

	in[0].send("EXIT\n")
	in[0].expect("+OK Done\n")
	in[0].expectEOF()
	// The slot is free once the server has seen the session end.
	for i := 0; ; i++ {
		c := dialRaw(t, addr)
		c.send("USER admin\nPASS password\n")
		c.expect("+OK Please send password\n")
		if c.line() == "+OK Successfully logged in\n" {
			break
		}
		if i == 50 {
			t.Fatal("the slot of a session that ended was not freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitCloses(t *testing.T) {
	addr := serve(t, &pctp.Server{})
	c := dialRaw(t, addr)
	c.send("EXIT\n")
	c.expect("+OK Done\n")
	c.expectEOF()

	c = dialRaw(t, addr)
	c.login()
	c.send("ADD ADMIN\nEXIT\n") // EXIT is valid in the middle of ADD too
	c.expect("+OK Please provide new user credentials\n")
	c.expect("+OK Done\n")
	c.expectEOF()
}

func TestIdleTimeout(t *testing.T) {
	c := dialRaw(t, serve(t, &pctp.Server{IdleTimeout: 100 * time.Millisecond}))
	c.send("USER admin\n")
	c.expect("+OK Please send password\n")
	c.send("PASS pass") // no LF: still idle as far as lines go
	c.expectEOF()
}

// TestServeShutdown: cancelling ctx closes the listener and every session,
// and Serve returns nil after its goroutines are done.
func TestServeShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&pctp.Server{Admin: newFakeAdmin()}).Serve(ctx, ln) }()
	c := dialRaw(t, ln.Addr().String())
	c.login()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	c.expectEOF()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open")
	}
}

func TestServeListenerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- (&pctp.Server{Admin: newFakeAdmin()}).Serve(context.Background(), ln) }()
	c := dialRaw(t, ln.Addr().String())
	c.login()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	c.expectEOF()
}

func TestServeNeedsAdmin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := (&pctp.Server{}).Serve(context.Background(), ln); !errors.Is(err, pctp.ErrNoAdmin) {
		t.Fatalf("Serve = %v, want ErrNoAdmin", err)
	}
}

// TestLoginThrottle: failures are counted per source across sessions, the
// delay function sees the count, and a successful login resets it.
func TestLoginThrottle(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	addr := serve(t, &pctp.Server{LoginDelay: func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, n)
		return 0
	}})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	for _, c := range []*raw{a, b, a} {
		c.send("USER admin\nPASS nope\nPASS nope2\n")
		c.expect("+OK Please send password\n")
		c.expect("-ERR Invalid credentials\n")
		c.expect("-ERR Invalid credentials\n")
	}
	b.login()
	a.send("PASS wrong\n")
	a.expect("-ERR Invalid credentials\n")
	mu.Lock()
	defer mu.Unlock()
	want := []int{0, 1, 2, 3, 4, 5, 6, 0}
	if !equal(seen, want) {
		t.Fatalf("delay asked for %v, want %v", seen, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoginDelayApplied checks only a lower bound, so it cannot flake on a
// slow machine.
func TestLoginDelayApplied(t *testing.T) {
	const d = 150 * time.Millisecond
	c := dialRaw(t, serve(t, &pctp.Server{LoginDelay: func(n int) time.Duration {
		if n >= 1 {
			return d
		}
		return 0
	}}))
	c.send("USER admin\nPASS bad\n")
	c.expect("+OK Please send password\n")
	c.expect("-ERR Invalid credentials\n")
	start := time.Now()
	c.send("PASS bad\n")
	c.expect("-ERR Invalid credentials\n")
	if el := time.Since(start); el < d {
		t.Fatalf("second failure answered after %v, want at least %v", el, d)
	}
}

// TestDeleteClosesAdminSessions: DEL ends the deleted admin's PCTP
// sessions, the deleting session's own included.
func TestDeleteClosesAdminSessions(t *testing.T) {
	addr := serve(t, &pctp.Server{})
	root := dialRaw(t, addr)
	root.login()
	for _, name := range []string{"ops", "ops2"} {
		root.send("ADD ADMIN\nUSER " + name + "\nPASS pw\n")
		root.expect("+OK Please provide new user credentials\n")
		root.expect("+OK Please send password\n")
		root.expect("+OK Successfully added user\n")
	}
	ops := dialRaw(t, addr)
	ops.send("USER ops\nPASS pw\n")
	ops.expect("+OK Please send password\n")
	ops.expect("+OK Successfully logged in\n")
	root.send("DEL ops\n")
	root.expect("+OK Successfully deleted user\n")
	ops.expectEOF()

	self := dialRaw(t, addr)
	self.send("USER ops2\nPASS pw\nDEL ops2\n")
	self.expect("+OK Please send password\n")
	self.expect("+OK Successfully logged in\n")
	self.expect("+OK Successfully deleted user\n")
	self.expectEOF()

	root.send("LIST\n")
	root.expect("+OK Sending user list...\n")
	root.expect("admin\tAdmin\n")
	root.expect("\n")
}

// TestSecretsNeverLogged runs logins and an ADD with logging at TRACE and
// checks that no password reaches the log or a reply.
func TestSecretsNeverLogged(t *testing.T) {
	var logs syncBuffer
	addr := serve(t, &pctp.Server{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})})
	c := dialRaw(t, addr)
	var replies strings.Builder
	for _, cmd := range []string{
		"USER admin", "PASS wrong-S3CRET-1", "PASS password",
		"ADD BASIC", "USER newbie", "PASS new-S3CRET-2",
		"ADD BASIC", "USER newbie2", "PASS " + strings.Repeat("S3CRET-3", 40), // too long: -ERR
		"CONFIG IO=8000", "EXIT",
	} {
		c.send(cmd + "\n")
		replies.WriteString(c.line())
	}
	c.expectEOF()
	for _, out := range []string{logs.String(), replies.String()} {
		if strings.Contains(out, "S3CRET") || strings.Contains(out, "password\"") {
			t.Fatalf("a password leaked:\n%s", out)
		}
	}
	for _, want := range []string{"authentication failed: listener=pctp client_ip=127.0.0.1 user=", "logged in", "user added", "setting changed", "cmd=PASS"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testlog.Buffer

// A session that never logs in is closed after LoginTimeout, however
// busy it keeps the line.
func TestLoginTimeout(t *testing.T) {
	srv := &pctp.Server{Admin: newFakeAdmin(), LoginTimeout: 300 * time.Millisecond}
	addr := serve(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	r := bufio.NewReader(c)
	for i := 0; i < 50; i++ {
		if _, err := c.Write([]byte("HELP\n")); err != nil {
			break
		}
		if _, err := r.ReadString('\n'); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("an unauthenticated session lived %v", d)
	}
}

// TestLoginDeadlineExcludesServerTime: the login deadline bounds the time
// the server waits for the client, not its own time checking passwords, so
// a login whose checks outlast the deadline (a loaded host, bcrypt) still
// succeeds.
func TestLoginDeadlineExcludesServerTime(t *testing.T) {
	admin := newFakeAdmin()
	admin.slow = 250 * time.Millisecond
	srv := &pctp.Server{Admin: admin, LoginTimeout: 400 * time.Millisecond}
	addr := serve(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	// Two wrong passwords and a right one: three checks, 750 ms of server
	// time against a 400 ms deadline.
	for _, line := range []string{"USER admin", "PASS wrong", "PASS wrong", "PASS password"} {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v (the session was closed)", line, err)
		}
		if line == "PASS password" && got != "+OK Successfully logged in\n" {
			t.Fatalf("%s: %q", line, got)
		}
	}
}

// TestAdminLogKeys: with a JSON logger, every line about an admin's change
// names the acting administrator ("admin") apart from the user or thing it
// acts on, so neither is lost to a duplicate key.
func TestAdminLogKeys(t *testing.T) {
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs, JSONFormat: true})
	c := dialRaw(t, serve(t, &pctp.Server{Logger: logger}))
	c.login()
	for _, step := range []struct{ cmd, want string }{
		{"ADD BASIC", "+OK Please provide new user credentials\n"},
		{"USER alice", "+OK Please send password\n"},
		{"PASS pw", "+OK Successfully added user\n"},
		{"CONFIG IO=8000", "+OK Setting IO buffers size\n"},
		{"KILL 7", "+OK Killed session 7\n"},
		{"KILL USER alice", "+OK Killed 1 session(s) of alice\n"},
		{"RULE ADD 1 deny ports=25", "+OK Added rule\n"},
		{"RULE DEL 1", "+OK Deleted rule 1\n"},
		{"DEL alice", "+OK Successfully deleted user\n"},
	} {
		c.send(step.cmd + "\n")
		c.expect(step.want)
	}
	c.send("EXIT\n")
	c.expect("+OK Done\n")
	c.expectEOF()

	// The subject of each change: key and value.
	want := map[string][2]string{
		"user added":      {"user", "alice"},
		"setting changed": {"key", "iobuf.size"},
		"session killed":  {"session", "7"},
		"sessions killed": {"user", "alice"},
		"rule added":      {"position", "1"},
		"rule deleted":    {"position", "1"},
		"user deleted":    {"user", "alice"},
	}
	seen := map[string]bool{}
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		msg, _ := m["@message"].(string)
		subject, ok := want[msg]
		if !ok {
			continue
		}
		seen[msg] = true
		if m["admin"] != "admin" {
			t.Errorf("%q: admin = %v, want admin: %s", msg, m["admin"], line)
		}
		if got := fmt.Sprint(m[subject[0]]); got != subject[1] {
			t.Errorf("%q: %s = %s, want %s: %s", msg, subject[0], got, subject[1], line)
		}
	}
	for msg := range want {
		if !seen[msg] {
			t.Errorf("no %q line in the log:\n%s", msg, logs.String())
		}
	}
}
