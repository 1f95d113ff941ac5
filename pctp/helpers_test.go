package pctp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

// noDelay keeps failed-login tests fast.
func noDelay(int) time.Duration { return 0 }

// serve runs srv on 127.0.0.1:0 until the test ends and returns its
// address. srv.Admin defaults to a new fake and LoginDelay to none.
func serve(t *testing.T, srv *pctp.Server) string {
	t.Helper()
	if srv.Admin == nil {
		srv.Admin = newFakeAdmin()
	}
	if srv.LoginDelay == nil {
		srv.LoginDelay = noDelay
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ln.Addr().String()
}

// raw is a plain TCP connection for byte-level tests.
type raw struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return wrapRaw(t, c)
}

// wrapRaw makes c a raw connection, closed when the test ends.
func wrapRaw(t *testing.T, c net.Conn) *raw {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &raw{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.Conn, s); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// line reads one reply line, LF included.
func (r *raw) line() string {
	r.t.Helper()
	s, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, s)
	}
	return s
}

// expect reads one line and checks it, LF included.
func (r *raw) expect(want string) {
	r.t.Helper()
	if got := r.line(); got != want {
		r.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectEOF checks that the server closed the connection.
func (r *raw) expectEOF() {
	r.t.Helper()
	s, err := r.r.ReadString('\n')
	if !errors.Is(err, io.EOF) && !isReset(err) {
		r.t.Fatalf("want EOF, got %q, %v", s, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func (r *raw) login() {
	r.t.Helper()
	r.send("USER admin\nPASS password\n")
	r.expect("+OK Please send password\n")
	r.expect("+OK Successfully logged in\n")
}

// client dials a pctp.Client for the test.
func client(t *testing.T, addr string) *pctp.Client {
	t.Helper()
	c, err := pctp.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 20 * time.Second
	t.Cleanup(func() { c.Close() })
	return c
}
