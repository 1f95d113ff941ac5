package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/middleware"
)

var testCreds = credentials{user: "floor", pass: "s3cret"}

// engines starts the floor on each engine this OS has, on loopback, with
// the test's user.
func engines(t *testing.T) map[string]string {
	t.Helper()
	return enginesFor(t, testCreds)
}

func enginesFor(t *testing.T, creds credentials) map[string]string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveGoroutines(ln, creds)
	t.Cleanup(func() { ln.Close() })
	addrs := map[string]string{"goroutines": ln.Addr().String()}
	if runtime.GOOS == "linux" {
		s, err := listenEpoll("127.0.0.1:0", 2, creds)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		addrs["epoll"] = s.Addr().String()
	}
	return addrs
}

// through dials dest through the floor at addr with the test's user.
func through(t *testing.T, addr, dest string) net.Conn {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", addr, &proxy.Auth{User: testCreds.user, Password: testCreds.pass}, &net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", dest)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// TestRelayBothWays sends 8 MiB through each engine to an echo server and
// reads it back only after a pause, so the relay's buffers fill and it
// must hold back (the epoll engine's backpressure); the client's
// half-close comes back as EOF.
func TestRelayBothWays(t *testing.T) {
	echo := testnet.Echo(t)
	for name, addr := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c := through(t, addr, echo)
			defer c.Close()
			want := make([]byte, 8<<20)
			_, _ = rand.Read(want)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil {
					err = c.(interface{ CloseWrite() error }).CloseWrite()
				}
				werr <- err
			}()
			time.Sleep(100 * time.Millisecond)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes back, want the %d sent", len(got), len(want))
			}
		})
	}
}

// TestHandshakeByteByByte sends the greeting, login and request a byte at
// a time, with early data right behind the request.
func TestHandshakeByteByByte(t *testing.T) {
	echo := testnet.Echo(t)
	dest := net.TCPAddrFromAddrPort(mustAddrPort(t, echo))
	msg := []byte{5, 1, 2, 1, byte(len(testCreds.user))}
	msg = append(msg, testCreds.user...)
	msg = append(msg, byte(len(testCreds.pass)))
	msg = append(msg, testCreds.pass...)
	msg = append(msg, 5, 1, 0, 1)
	msg = append(msg, dest.IP.To4()...)
	msg = append(msg, byte(dest.Port>>8), byte(dest.Port), 'h', 'i')
	for name, addr := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c := testnet.Dial(t, addr)
			for i := range msg {
				if _, err := c.Write(msg[i : i+1]); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, 2+2+10+2)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:4], []byte{5, 2, 1, 0}) || got[4] != 5 || got[5] != byte(middleware.ReplySucceeded) || string(got[14:]) != "hi" {
				t.Fatalf("got % x", got)
			}
		})
	}
}

// TestRefusals checks each refusal's answer, and that the server still
// serves after them.
func TestRefusals(t *testing.T) {
	echo := testnet.Echo(t)
	closed := closedPort(t)
	login := func(user, pass string) []byte {
		b := []byte{5, 1, 2, 1, byte(len(user))}
		b = append(b, user...)
		b = append(b, byte(len(pass)))
		return append(b, pass...)
	}
	// request is a login and then a request (a new slice each time).
	request := func(req ...byte) []byte { return slices.Concat(login(testCreds.user, testCreds.pass), req) }
	answered := func(code middleware.Reply) []byte { return slices.Concat([]byte{5, 2, 1, 0}, reply(code, zeroAP)) }
	cases := []struct {
		name string
		send []byte
		want []byte // then EOF
	}{
		{"wrong password", login(testCreds.user, "nope"), []byte{5, 2, 1, 1}},
		{"no user/password offered", []byte{5, 1, 0}, []byte{5, noMethod}},
		{"not SOCKS5", []byte("GET / HTTP/1.1\r\n\r\n"), nil},
		{"BIND", request(5, 2, 0, 1, 127, 0, 0, 1, 0, 80), answered(middleware.ReplyCommandUnsupported)},
		{"domain name", request(5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0, 80), answered(middleware.ReplyAddressUnsupported)},
		{"connection refused", request(5, 1, 0, 1, 127, 0, 0, 1, byte(closed>>8), byte(closed)), answered(middleware.ReplyConnectionRefused)},
	}
	for name, addr := range engines(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				c := testnet.Dial(t, addr)
				if _, err := c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
				}
			}
			c := through(t, addr, echo)
			defer c.Close()
			if _, err := c.Write([]byte("still here")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still here" {
				t.Fatalf("after the refusals: %q, %v", buf, err)
			}
		})
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(p)
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestHalfClosedTargetDrains: the client sends its request and
// half-closes; the target answers 8 MiB and closes; the client reads only
// after a pause, so the relay holds back with the target's FIN already
// in. Every byte must arrive before the EOF.
func TestHalfClosedTargetDrains(t *testing.T) {
	want := make([]byte, 8<<20)
	_, _ = rand.Read(want)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.Copy(io.Discard, c); err == nil {
					_, _ = c.Write(want)
				}
			}()
		}
	}()
	for name, addr := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c := through(t, addr, target.Addr().String())
			defer c.Close()
			if _, err := c.Write([]byte("send")); err != nil {
				t.Fatal(err)
			}
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes before the EOF, want all %d", len(got), len(want))
			}
		})
	}
}

// TestLongestLoginAndEarlyData: a 255-byte user and password (the longest
// RFC 1929 allows) log in, and 4000 bytes sent with the request reach
// the destination.
func TestLongestLoginAndEarlyData(t *testing.T) {
	long := credentials{user: strings.Repeat("u", 255), pass: strings.Repeat("p", 255)}
	echo := mustAddrPort(t, testnet.Echo(t))
	early := make([]byte, 4000)
	_, _ = rand.Read(early)
	msg := []byte{5, 1, 2, 1, 255}
	msg = append(msg, long.user...)
	msg = append(msg, 255)
	msg = append(msg, long.pass...)
	msg = append(msg, 5, 1, 0, 1)
	msg = append(msg, echo.Addr().AsSlice()...)
	msg = append(msg, byte(echo.Port()>>8), byte(echo.Port()))
	msg = append(msg, early...)
	for name, addr := range enginesFor(t, long) {
		t.Run(name, func(t *testing.T) {
			c := testnet.Dial(t, addr)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 2+2+10+len(early))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:4], []byte{5, 2, 1, 0}) || got[5] != byte(middleware.ReplySucceeded) || !bytes.Equal(got[14:], early) {
				t.Fatalf("got % x...", got[:14])
			}
		})
	}
}
