package pctp_test

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

// Pipeline sends every command before it reads a reply: a server that
// answers only once it has all three lines still answers.
func TestClientPipelineOneRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		var lines []string
		for range 3 {
			l, err := br.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
		got <- lines
		conn.Write([]byte("+OK Sending stats...\na: 1\n\n-ERR No statistics for user bob\n+OK Sending sessions...\n\n"))
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := pctp.NewClient(conn)
	defer c.Close()
	c.Timeout = 10 * time.Second
	rs, err := c.Pipeline("STATS", "STATS USER bob", "SESSIONS")
	if err != nil {
		t.Fatal(err)
	}
	if lines := <-got; strings.Join(lines, "|") != "STATS|STATS USER bob|SESSIONS" {
		t.Fatalf("server read %q", lines)
	}
	if len(rs) != 3 || !rs[0].OK || strings.Join(rs[0].Lines, "|") != "a: 1" || rs[1].OK || rs[1].Multiline ||
		!rs[2].OK || !rs[2].Multiline || len(rs[2].Lines) != 0 {
		t.Fatalf("replies %#v", rs)
	}
}

// Against the real server: replies come back in order, and EXIT ends the
// pipeline and the client.
func TestClientPipelineRealServer(t *testing.T) {
	c := client(t, serve(t, &pctp.Server{}))
	if err := c.Login("admin", "password"); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Pipeline("LIST", "LOGS x", "STATS", "EXIT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 || rs[0].Status != "+OK Sending user list..." || rs[1].OK || rs[2].Status != "+OK Sending stats..." || rs[3].Status != "+OK Done" {
		t.Fatalf("replies %#v", rs)
	}
	if _, err := c.Pipeline("STATS"); !errors.Is(err, pctp.ErrClosed) {
		t.Fatalf("after EXIT: err = %v", err)
	}
	if _, err := client(t, serve(t, &pctp.Server{})).Pipeline("STATS", "LIST\nEXIT"); !errors.Is(err, pctp.ErrBadCommand) {
		t.Fatalf("a command with a line end: err = %v", err)
	}
}
