package pctp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/pctp"
)

func TestClientDo(t *testing.T) {
	c := client(t, serve(t, &pctp.Server{}))
	if err := c.Login("admin", "password"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Do("LIST")
	if err != nil {
		t.Fatal(err)
	}
	want := pctp.Reply{OK: true, Status: "+OK Sending user list...", Lines: []string{"admin\tAdmin"}, Multiline: true}
	if r.OK != want.OK || r.Status != want.Status || !r.Multiline || strings.Join(r.Lines, "|") != "admin\tAdmin" {
		t.Fatalf("got %#v, want %#v", r, want)
	}
	if got := r.String(); got != "+OK Sending user list...\nadmin\tAdmin\n\n" {
		t.Fatalf("String = %q", got)
	}
	// An empty multi-line reply and a single-line reply to a multi-line
	// command (CONFIG with an argument).
	r, _ = c.Do("LOGS 0")
	if !r.OK || !r.Multiline || len(r.Lines) != 0 || r.String() != "+OK Sending logs...\n\n" {
		t.Fatalf("LOGS 0 = %#v", r)
	}
	r, _ = c.Do("CONFIG IO=8000")
	if !r.OK || r.Multiline || r.String() != "+OK Setting IO buffers size\n" {
		t.Fatalf("CONFIG IO= = %#v", r)
	}
	// -ERR to a multi-line command is one line, and the session goes on.
	r, _ = c.Do("LOGS x")
	if r.OK || r.Multiline || r.Status != "-ERR N must be a non-negative integer" {
		t.Fatalf("LOGS x = %#v", r)
	}
	if _, err := c.Do("STATS\nEXIT"); !errors.Is(err, pctp.ErrBadCommand) {
		t.Fatalf("two lines: err = %v", err)
	}
	if r, err := c.Do("EXIT"); err != nil || r.Status != "+OK Done" {
		t.Fatalf("EXIT = %v, %v", r, err)
	}
	if _, err := c.Do("STATS"); !errors.Is(err, pctp.ErrClosed) {
		t.Fatalf("after EXIT: err = %v", err)
	}
}

func TestClientLoginError(t *testing.T) {
	c := client(t, serve(t, &pctp.Server{}))
	err := c.Login("admin", "hunter2")
	var re *pctp.ReplyError
	if !errors.As(err, &re) || re.Keyword != "PASS" || re.Status != "-ERR Invalid credentials" {
		t.Fatalf("err = %#v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error holds the password: %v", err)
	}
	if err := c.Login("admin", "password"); err != nil {
		t.Fatalf("second try: %v", err)
	}
}

func TestClientDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := pctp.Dial(context.Background(), addr); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

// fakeServer answers every line with the given text.
func fakeServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := br.ReadString('\n'); err == nil {
			io.WriteString(c, answer)
		}
	}()
	return ln.Addr().String()
}

func TestClientProtocolErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cmd, answer string
		want        error
	}{
		"bad status":     {"STATS", "HELLO\n", pctp.ErrProtocol},
		"lower case":     {"STATS", "+ok fine\n", pctp.ErrProtocol},
		"closed":         {"STATS", "", pctp.ErrClosed},
		"unterminated":   {"STATS", "+OK Sending stats...\na: 1\n", pctp.ErrClosed},
		"huge line":      {"STATS", "+OK " + strings.Repeat("x", 70000) + "\n", pctp.ErrProtocol},
		"no status text": {"STATS", "+OK\n\n", nil},
	} {
		t.Run(name, func(t *testing.T) {
			c := client(t, fakeServer(t, tc.answer))
			_, err := c.Do(tc.cmd)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestExpectsMultiline(t *testing.T) {
	for cmd, want := range map[string]bool{
		"STATS": true, "stats": true, "LOGS": true, "LOGS 5": true, "LIST": true,
		"HELP": true, "CONFIG": true, "CONFIG ": true, "CONFIG IO=8000": false,
		"USER admin": false, "PASS x": false, "ADD BASIC": false, "DEL bob": false,
		"EXIT": false, "NOOP": false, "": false,
		"LOGS " + strings.Repeat("9", pctp.MaxLine): false, // too long: -ERR
	} {
		if got := pctp.ExpectsMultiline(cmd); got != want {
			t.Errorf("ExpectsMultiline(%.20q) = %v, want %v", cmd, got, want)
		}
	}
}
