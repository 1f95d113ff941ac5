package core

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// bindRequest authenticates as bob and sends BIND for dest; it returns the
// control connection and the first reply.
func bindRequest(t *testing.T, proxyAddr string, dest middleware.Target) (net.Conn, middleware.Reply, netip.AddrPort) {
	t.Helper()
	c := rawConn(t, proxyAddr)
	handshake(t, c, "bob", "builder")
	if _, err := c.Write(appendRequest(nil, middleware.CmdBind, dest)); err != nil {
		t.Fatal(err)
	}
	code, bound := readReply(t, c)
	return c, code, bound
}

func TestBindWithLocalPeer(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	for _, dest := range []middleware.Target{
		{Addr: netip.MustParseAddr("127.0.0.1")},
		{Name: "localhost", Port: 20},
	} {
		t.Run(dest.Host(), func(t *testing.T) {
			if dest.Name != "" {
				if _, err := net.ResolveIPAddr("ip", dest.Name); err != nil {
					t.Skip("localhost does not resolve here")
				}
			}
			c, code, bound := bindRequest(t, addr, dest)
			if code != middleware.ReplySucceeded || !bound.Addr().IsLoopback() || bound.Port() == 0 {
				t.Fatalf("first reply %v, BND %v", code, bound)
			}
			// Early data from the client, before the peer: relayed after.
			if _, err := c.Write([]byte("early ")); err != nil {
				t.Fatal(err)
			}
			peer, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			_ = peer.SetDeadline(time.Now().Add(10 * time.Second))
			code, from := readReply(t, c)
			if code != middleware.ReplySucceeded || from != addrPortOf(peer.LocalAddr()) {
				t.Fatalf("second reply %v, BND %v, want the peer %v", code, from, peer.LocalAddr())
			}
			// Data both ways.
			if _, err := c.Write([]byte("from client")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, peer, len("early from client")); string(got) != "early from client" {
				t.Fatalf("peer got %q", got)
			}
			if _, err := peer.Write([]byte("from peer")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, len("from peer")); string(got) != "from peer" {
				t.Fatalf("client got %q", got)
			}
			// The peer's close ends the client's side too (half-close).
			_ = peer.(*net.TCPConn).CloseWrite()
			if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
				t.Fatalf("after the peer's close: %q, %v", b, err)
			}
		})
	}
	if n := stat(rt, "bind_refused_peers"); n != 0 {
		t.Errorf("bind_refused_peers = %d", n)
	}
}

// Only 127.0.0.1 and ::1 exist here: the expected peer is ::1, the
// listener is put on 127.0.0.1 (socks.bind.address), so a peer from
// 127.0.0.1 is unexpected. It is refused, the wait goes on, and the bind
// timeout ends it with reply 0x06.
func TestBindUnexpectedPeerAndTimeout(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.Bind = BindConfig{Address: "127.0.0.1", Timeout: 700 * time.Millisecond}
	rt, addr := startProxy(t, cfg)
	start := time.Now()
	c, code, bound := bindRequest(t, addr, middleware.Target{Addr: netip.IPv6Loopback(), Port: 21})
	if code != middleware.ReplySucceeded || bound.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("first reply %v, BND %v", code, bound)
	}
	for range 2 {
		peer, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // refused so fast that the connect itself saw the reset
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = peer.SetDeadline(time.Now().Add(5 * time.Second))
		n, err := peer.Read(make([]byte, 1))
		peer.Close()
		if n != 0 || err == nil || errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("unexpected peer: read %d, %v; want it closed", n, err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); stat(rt, "bind_refused_peers") != 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := stat(rt, "bind_refused_peers"); n != 2 {
		t.Fatalf("bind_refused_peers = %d", n)
	}
	code, _ = readReply(t, c)
	if code != middleware.ReplyTTLExpired {
		t.Fatalf("after the timeout: reply %v, want TTL expired", code)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
	expectClosed(t, c)
	// The listener is gone.
	if p, err := net.DialTimeout("tcp", bound.String(), time.Second); err == nil {
		p.Close()
		t.Fatal("the BIND port still accepts")
	}
}

// The control connection's end cancels the wait: the port closes and the
// goroutines return.
func TestBindCancelledByControl(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	settle(t)
	before := runtime.NumGoroutine()
	c, code, bound := bindRequest(t, addr, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1")})
	if code != middleware.ReplySucceeded {
		t.Fatalf("first reply %v", code)
	}
	c.Close()
	waitFor(t, "the BIND port to close", func() bool {
		p, err := net.DialTimeout("tcp", bound.String(), time.Second)
		if err == nil {
			p.Close()
		}
		return err != nil
	})
	waitFor(t, "goroutines to return", func() bool { return runtime.NumGoroutine() <= before })
}

func TestBindRefusals(t *testing.T) {
	_, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.policy", "deny_ports", []any{2121})))
	loop := netip.MustParseAddr("127.0.0.1")
	for name, tt := range map[string]struct {
		dest middleware.Target
		want middleware.Reply
	}{
		"policy":          {middleware.Target{Addr: loop, Port: 2121}, middleware.ReplyNotAllowed},
		"no peer address": {middleware.Target{Addr: netip.IPv4Unspecified()}, middleware.ReplyNotAllowed},
		"no peer v6":      {middleware.Target{Addr: netip.IPv6Unspecified()}, middleware.ReplyNotAllowed},
		"allowed":         {middleware.Target{Addr: loop, Port: 21}, middleware.ReplySucceeded},
	} {
		t.Run(name, func(t *testing.T) {
			c, code, _ := bindRequest(t, addr, tt.dest)
			if code != tt.want {
				t.Fatalf("reply %v, want %v", code, tt.want)
			}
			if code != middleware.ReplySucceeded {
				expectClosed(t, c)
			}
		})
	}
}

// BIND relays through a wrapped client conn too (the buffered path).
func TestBindBufferedRelay(t *testing.T) {
	_, addr := startProxy(t, testConfig(append(defaultTestChain(), stage("test.wrap"))...))
	c, code, bound := bindRequest(t, addr, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1")})
	if code != middleware.ReplySucceeded {
		t.Fatalf("first reply %v", code)
	}
	peer, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	_ = peer.SetDeadline(time.Now().Add(10 * time.Second))
	if code, _ := readReply(t, c); code != middleware.ReplySucceeded {
		t.Fatalf("second reply %v", code)
	}
	msg := bytes.Repeat([]byte("x"), 100000)
	go func() { _, _ = peer.Write(msg) }()
	if got := readN(t, c, len(msg)); !bytes.Equal(got, msg) {
		t.Fatal("payload mismatch")
	}
}
