package core

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// Encoders for the messages the server only parses, for tests and fuzzing.

// appendGreeting encodes a greeting (used by tests and fuzzing).
func appendGreeting(dst []byte, methods ...byte) []byte {
	dst = append(dst, socksVersion, byte(len(methods)))
	return append(dst, methods...)
}

// appendCredentials encodes an RFC 1929 request; user and pass must be at
// most 255 octets.
func appendCredentials(dst []byte, user, pass string) []byte {
	dst = append(dst, authVersion, byte(len(user)))
	dst = append(dst, user...)
	dst = append(dst, byte(len(pass)))
	return append(dst, pass...)
}

// appendRequest encodes a request (used by tests and fuzzing).
func appendRequest(dst []byte, cmd middleware.Command, t middleware.Target) []byte {
	dst = append(dst, socksVersion, byte(cmd), 0x00)
	return appendAddr(dst, t)
}

func TestParseGreeting(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		methods []byte
		n       int
		err     error
	}{
		{"one method", []byte{5, 1, 0}, []byte{0}, 3, nil},
		{"two methods and trailing", []byte{5, 2, 0, 2, 1, 9}, []byte{0, 2}, 4, nil},
		{"255 methods", append([]byte{5, 255}, make([]byte, 255)...), make([]byte, 255), 257, nil},
		{"empty", nil, nil, 0, errShort},
		{"only version", []byte{5}, nil, 0, errShort},
		{"methods missing", []byte{5, 3, 0}, nil, 0, errShort},
		{"socks4", []byte{4, 1, 0}, nil, 0, ErrVersion},
		{"no methods", []byte{5, 0}, nil, 0, ErrNoMethods},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, n, err := parseGreeting(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && (n != tt.n || !bytes.Equal(g.methods, tt.methods)) {
				t.Fatalf("got %v (%d), want %v (%d)", g.methods, n, tt.methods, tt.n)
			}
		})
	}
}

func TestParseCredentials(t *testing.T) {
	long := strings.Repeat("x", 255)
	tests := []struct {
		name       string
		in         []byte
		user, pass string
		err        error
	}{
		{"ok", appendCredentials(nil, "alice", "secret"), "alice", "secret", nil},
		{"max lengths", appendCredentials(nil, long, long), long, long, nil},
		{"empty user and pass", []byte{1, 0, 0}, "", "", nil},
		{"short", []byte{1, 5, 'a'}, "", "", errShort},
		{"short password", []byte{1, 1, 'a', 3, 'b'}, "", "", errShort},
		{"bad version", []byte{5, 1, 'a', 1, 'b'}, "", "", ErrAuthVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := parseCredentials(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && (string(c.user) != tt.user || string(c.pass) != tt.pass) {
				t.Fatalf("got %q/%q", c.user, c.pass)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	v4 := middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}
	v6 := middleware.Target{Addr: netip.MustParseAddr("::1"), Port: 443}
	name := middleware.Target{Name: "localhost", Port: 8080}
	tests := []struct {
		name   string
		in     []byte
		cmd    middleware.Command
		target middleware.Target
		err    error
	}{
		{"ipv4", appendRequest(nil, middleware.CmdConnect, v4), middleware.CmdConnect, v4, nil},
		{"ipv6", appendRequest(nil, middleware.CmdConnect, v6), middleware.CmdConnect, v6, nil},
		{"domain", appendRequest(nil, middleware.CmdConnect, name), middleware.CmdConnect, name, nil},
		{"bind parses", appendRequest(nil, middleware.CmdBind, v4), middleware.CmdBind, v4, nil},
		{"unknown command parses", appendRequest(nil, 9, v4), 9, v4, nil},
		{"short ipv4", appendRequest(nil, middleware.CmdConnect, v4)[:8], 0, middleware.Target{}, errShort},
		{"short header", []byte{5, 1, 0, 1}, 0, middleware.Target{}, errShort},
		{"bad atyp", []byte{5, 1, 0, 7, 1, 2, 3, 4, 0, 80}, 0, middleware.Target{}, ErrAddressType},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, 0, middleware.Target{}, ErrEmptyDomain},
		{"bad version", []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, 0, middleware.Target{}, ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, err := parseRequest(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if n != len(tt.in) || req.cmd != tt.cmd || req.target != tt.target {
				t.Fatalf("got %+v (%d bytes), want %v %+v (%d)", req, n, tt.cmd, tt.target, len(tt.in))
			}
		})
	}
}

func TestAppendReply(t *testing.T) {
	got := appendReply(nil, middleware.ReplySucceeded, netip.MustParseAddrPort("127.0.0.1:1080"))
	want := []byte{5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38}
	if !bytes.Equal(got, want) {
		t.Fatalf("ipv4 reply = %v, want %v", got, want)
	}
	got = appendReply(nil, middleware.ReplyHostUnreachable, netip.AddrPort{})
	want = []byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("failure reply = %v, want %v", got, want)
	}
	got = appendReply(nil, 0, netip.MustParseAddrPort("[::1]:1"))
	if len(got) != 4+16+2 || got[3] != atypIPv6 {
		t.Fatalf("ipv6 reply = %v", got)
	}
	// IPv4-mapped IPv6 addresses are sent as IPv4.
	got = appendReply(nil, 0, netip.MustParseAddrPort("[::ffff:10.0.0.1]:2"))
	if got[3] != atypIPv4 || !bytes.Equal(got[4:8], []byte{10, 0, 0, 1}) {
		t.Fatalf("mapped reply = %v", got)
	}
}

// FuzzParseRequest: no input panics, and a parsed request encodes back to
// the bytes it was parsed from.
func FuzzParseRequest(f *testing.F) {
	f.Add(appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}))
	f.Add(appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}))
	f.Add(appendRequest(nil, middleware.CmdUDPAssociate, middleware.Target{Name: "example.com", Port: 53}))
	f.Add([]byte{5, 1, 0, 3, 0, 0, 80})
	f.Add([]byte{5, 1, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := parseRequest(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		again := appendRequest(nil, req.cmd, req.target)
		// RSV is not kept; compare everything else.
		if !bytes.Equal(again[:2], b[:2]) || !bytes.Equal(again[3:], b[3:n]) {
			t.Fatalf("round trip: %v → %+v → %v", b[:n], req, again)
		}
	})
}

// FuzzParseGreeting: no input panics; parsed greetings round-trip.
func FuzzParseGreeting(f *testing.F) {
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 2, 0, 2})
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, n, err := parseGreeting(b)
		if err != nil {
			return
		}
		if again := appendGreeting(nil, g.methods...); !bytes.Equal(again, b[:n]) {
			t.Fatalf("round trip: %v → %v", b[:n], again)
		}
	})
}

// FuzzParseCredentials: no input panics; parsed credentials round-trip.
func FuzzParseCredentials(f *testing.F) {
	f.Add(appendCredentials(nil, "admin", "password"))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := parseCredentials(b)
		if err != nil {
			return
		}
		if again := appendCredentials(nil, string(c.user), string(c.pass)); !bytes.Equal(again, b[:n]) {
			t.Fatalf("round trip: %v → %v", b[:n], again)
		}
	})
}

func BenchmarkParseHandshake(b *testing.B) {
	msg := appendGreeting(nil, 0, 2)
	msg = appendCredentials(msg, "admin", "password")
	msg = appendRequest(msg, middleware.CmdConnect, middleware.Target{Name: "localhost", Port: 8080})
	b.ReportAllocs()
	for b.Loop() {
		g, n1, _ := parseGreeting(msg)
		c, n2, _ := parseCredentials(msg[n1:])
		r, _, err := parseRequest(msg[n1+n2:])
		if err != nil || len(g.methods) != 2 || len(c.user) != 5 || r.target.Port != 8080 {
			b.Fatal("bad parse")
		}
	}
}
