package socks5dmain

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// socksRequest opens a connection to the proxy, authenticates as user and
// sends cmd for 127.0.0.1:0 (BIND: the expected peer; UDP ASSOCIATE: the
// client's source, unknown). It returns the conn and the first reply's
// code, or -1 when the proxy closed the connection before replying.
func socksRequest(t *testing.T, proxyAddr, user, pass string, cmd byte) (net.Conn, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte{5, 1, 2, 1, byte(len(user))}
	msg = append(msg, user...)
	msg = append(msg, byte(len(pass)))
	msg = append(msg, pass...)
	msg = append(msg, 5, cmd, 0, 1, 127, 0, 0, 1, 0, 0)
	if _, err := c.Write(msg); err != nil {
		return c, -1
	}
	var auth [4]byte
	if _, err := io.ReadFull(c, auth[:]); err != nil {
		return c, -1
	}
	if !bytes.Equal(auth[:], []byte{5, 2, 1, 0}) {
		t.Fatalf("greeting and authentication answered %v", auth)
	}
	var reply [10]byte // VER REP RSV ATYP=1 IPv4 PORT
	if _, err := io.ReadFull(c, reply[:2]); err != nil {
		return c, -1
	}
	if reply[1] == 0 {
		if _, err := io.ReadFull(c, reply[2:]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, int(reply[1])
}

const (
	cmdConnect = 1
	cmdBind    = 2
	cmdUDP     = 3
)

// A BIND or a UDP association is a connection like a CONNECT for every
// limit of the limits stage: real BIND and UDP ASSOCIATE requests over
// loopback take a user's place (and an address's) while they are open.
func TestLimitsCountBindAndUDP(t *testing.T) {
	t.Run("per_user", func(t *testing.T) {
		cfg := writeConfig(t, `
users:
  - {name: alice, password: wonderland, role: basic}
chain:
  - use: limits
    per_user: 2
  - use: auth
`)
		s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
		bind, code := socksRequest(t, s.socks, "alice", "wonderland", cmdBind)
		if code != 0 {
			t.Fatalf("first BIND: reply %d", code)
		}
		if _, code := socksRequest(t, s.socks, "alice", "wonderland", cmdUDP); code != 0 {
			t.Fatalf("UDP ASSOCIATE: reply %d", code)
		}
		// alice holds 2 places: every third request is refused with 0x02.
		for _, cmd := range []byte{cmdBind, cmdBind, cmdUDP, cmdConnect} {
			if _, code := socksRequest(t, s.socks, "alice", "wonderland", cmd); code != 2 {
				t.Fatalf("alice's third (command %d): reply %d, want 2", cmd, code)
			}
		}
		// Another user is not affected.
		if _, code := socksRequest(t, s.socks, "admin", "password", cmdBind); code != 0 {
			t.Fatalf("admin's BIND: reply %d", code)
		}
		// The BIND ends: alice has a place again.
		bind.Close()
		var got int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, got = socksRequest(t, s.socks, "alice", "wonderland", cmdBind); got == 0 {
				break
			}
		}
		if got != 0 {
			t.Fatalf("BIND after one of alice's ended: reply %d", got)
		}
	})
	t.Run("per_ip", func(t *testing.T) {
		cfg := writeConfig(t, `
chain:
  - use: limits
    per_ip: 2
  - use: auth
`)
		s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
		for _, cmd := range []byte{cmdBind, cmdUDP} {
			if _, code := socksRequest(t, s.socks, "admin", "password", cmd); code != 0 {
				t.Fatalf("command %d: reply %d", cmd, code)
			}
		}
		// A third connection from 127.0.0.1 is closed before the handshake.
		if _, code := socksRequest(t, s.socks, "admin", "password", cmdBind); code != -1 {
			t.Fatalf("third from one address: reply %d, want the connection closed", code)
		}
	})
}
