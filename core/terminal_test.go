package core

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

func defaultTestChain() []StageConfig { return []StageConfig{stage("test.auth")} }

func TestConnectThroughRealClient(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo4 := echoServer(t, "tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(echo4)
	targets := map[string]string{
		"ipv4":   echo4,
		"domain": net.JoinHostPort("localhost", port), // resolves only localhost
	}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		targets["ipv6"] = echoServer(t, "tcp", "[::1]:0")
	} else {
		t.Log("no ::1 on this machine; IPv6 target skipped")
	}
	if _, err := net.ResolveTCPAddr("tcp", targets["domain"]); err != nil {
		delete(targets, "domain")
		t.Log("localhost does not resolve here; domain target skipped")
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := []byte("hello through " + name)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, c, len(msg)); !bytes.Equal(got, msg) {
				t.Fatalf("echo = %q", got)
			}
		})
	}
}

// handshake sends greeting and password auth and checks both answers.
func handshake(t *testing.T, c net.Conn, user, pass string) {
	t.Helper()
	if _, err := c.Write(appendCredentials(appendGreeting(nil, 2), user, pass)); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 4); !bytes.Equal(got, []byte{5, 2, 1, 0}) {
		t.Fatalf("greeting+auth answer = %v", got)
	}
}

// readReply reads a reply and returns its code and bound address.
func readReply(t *testing.T, c net.Conn) (middleware.Reply, netip.AddrPort) {
	t.Helper()
	h := readN(t, c, 4)
	if h[0] != 5 {
		t.Fatalf("reply version %d", h[0])
	}
	var addr netip.Addr
	switch h[3] {
	case atypIPv4:
		addr = netip.AddrFrom4([4]byte(readN(t, c, 4)))
	case atypIPv6:
		addr = netip.AddrFrom16([16]byte(readN(t, c, 16)))
	default:
		t.Fatalf("reply ATYP %d", h[3])
	}
	port := binary.BigEndian.Uint16(readN(t, c, 2))
	return middleware.Reply(h[1]), netip.AddrPortFrom(addr, port)
}

func TestBoundAddressIsOutboundSocket(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			peer <- addrPortOf(c.RemoteAddr())
			c.Close()
		}
	}()
	c := rawConn(t, addr)
	handshake(t, c, "bob", "builder")
	_, _ = c.Write(appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(ln.Addr().(*net.TCPAddr).Port)}))
	code, bound := readReply(t, c)
	if code != middleware.ReplySucceeded {
		t.Fatalf("reply %v", code)
	}
	select {
	case p := <-peer:
		if p != bound {
			t.Fatalf("BND = %v, but the target saw %v", bound, p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target saw no connection")
	}
}

func TestReplyCodes(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := uint16(closed.Addr().(*net.TCPAddr).Port)
	closed.Close() // nothing listens there now: connection refused
	loop := netip.MustParseAddr("127.0.0.1")
	unresolvable := strings.Repeat("a", 64) + ".invalid" // a label over 63 octets: rejected without a query

	tests := []struct {
		name  string
		chain []StageConfig
		req   []byte
		want  middleware.Reply
	}{
		{"refused", nil, appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: loop, Port: closedPort}), middleware.ReplyConnectionRefused},
		{"unresolvable name", nil, appendRequest(nil, middleware.CmdConnect, middleware.Target{Name: unresolvable, Port: 80}), middleware.ReplyHostUnreachable},
		{"unknown command", nil, appendRequest(nil, 0x09, middleware.Target{Addr: loop, Port: 1}), middleware.ReplyCommandUnsupported},
		{"bad address type", nil, []byte{5, 1, 0, 0x05, 1, 2, 3, 4, 0, 80}, middleware.ReplyAddressUnsupported},
		{"network unreachable", []StageConfig{stage("test.dial", "fail", "netunreach")}, appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: loop, Port: 1}), middleware.ReplyNetworkUnreachable},
		{"timed out", []StageConfig{stage("test.dial", "fail", "timeout")}, appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: loop, Port: 1}), middleware.ReplyTTLExpired},
		{"not allowed", []StageConfig{stage("test.dial", "fail", "denied")}, appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: loop, Port: 1}), middleware.ReplyNotAllowed},
		{"general failure", []StageConfig{stage("test.dial", "fail", "other")}, appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: loop, Port: 1}), middleware.ReplyGeneralFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startProxy(t, testConfig(append(defaultTestChain(), tt.chain...)...))
			c := rawConn(t, addr)
			handshake(t, c, "bob", "builder")
			if _, err := c.Write(tt.req); err != nil {
				t.Fatal(err)
			}
			code, bound := readReply(t, c)
			if code != tt.want {
				t.Fatalf("reply = %#x (%v), want %#x (%v)", byte(code), code, byte(tt.want), tt.want)
			}
			if bound != netip.AddrPortFrom(netip.IPv4Unspecified(), 0) {
				t.Errorf("failure reply carries BND %v", bound)
			}
			expectClosed(t, c)
		})
	}
}

func TestHandshakeFailures(t *testing.T) {
	tests := []struct {
		name  string
		chain []StageConfig
		send  []byte
		want  []byte // the answer before the server closes
	}{
		{"wrong password", nil, appendCredentials(appendGreeting(nil, 2), "bob", "nope"), []byte{5, 2, 1, 1}},
		{"unknown user", nil, appendCredentials(appendGreeting(nil, 2), "eve", "builder"), []byte{5, 2, 1, 1}},
		{"no acceptable method", nil, appendGreeting(nil, 0, 1), []byte{5, 0xff}},
		{"no methods at all", nil, []byte{5, 0}, []byte{5, 0xff}},
		{"socks4 is closed", nil, []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil},
		{"bad auth version", nil, append(appendGreeting(nil, 2), 5, 1, 'a', 1, 'b'), []byte{5, 2}},
		{"no auth stage fails closed", []StageConfig{}, appendGreeting(nil, 0, 2), []byte{5, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := defaultTestChain()
			if tt.chain != nil {
				chain = tt.chain
			}
			_, addr := startProxy(t, testConfig(chain...))
			c := rawConn(t, addr)
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if len(tt.want) > 0 {
				if got := readN(t, c, len(tt.want)); !bytes.Equal(got, tt.want) {
					t.Fatalf("answer = %v, want %v", got, tt.want)
				}
			}
			expectClosed(t, c)
		})
	}
}

func TestAnonymousAccess(t *testing.T) {
	_, addr := startProxy(t, testConfig(stage("test.auth", "anonymous", true)))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	c, err := socksDialer(t, addr, "", "").Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("x"))
	readN(t, c, 1)
	// Without anonymous access the same client is refused.
	_, addr2 := startProxy(t, testConfig(defaultTestChain()...))
	if _, err := socksDialer(t, addr2, "", "").Dial("tcp", echo); err == nil {
		t.Fatal("anonymous client accepted")
	}
}

// Greeting, auth, request and early data in one write, and the same one
// byte at a time.
func TestPipelinedAndByteAtATime(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	ap := netip.MustParseAddrPort(echo)
	msg := appendGreeting(nil, 0, 2)
	msg = appendCredentials(msg, "bob", "builder")
	msg = appendRequest(msg, middleware.CmdConnect, middleware.Target{Addr: ap.Addr(), Port: ap.Port()})
	msg = append(msg, "early"...)
	for _, mode := range []string{"pipelined", "byte-at-a-time"} {
		t.Run(mode, func(t *testing.T) {
			c := rawConn(t, addr)
			if mode == "pipelined" {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
			} else {
				for i := range msg {
					if _, err := c.Write(msg[i : i+1]); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if got := readN(t, c, 4); !bytes.Equal(got, []byte{5, 2, 1, 0}) {
				t.Fatalf("answers = %v", got)
			}
			if code, _ := readReply(t, c); code != middleware.ReplySucceeded {
				t.Fatalf("reply %v", code)
			}
			if got := readN(t, c, 5); string(got) != "early" {
				t.Fatalf("early data echoed as %q", got)
			}
		})
	}
}

func TestHandshakeDeadline(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.HandshakeTimeout = 300 * time.Millisecond
	_, addr := startProxy(t, cfg)
	c := rawConn(t, addr)
	_, _ = c.Write([]byte{5}) // one byte, then stall
	start := time.Now()
	expectClosed(t, c)
	t.Logf("stalled handshake closed after %v", time.Since(start).Round(time.Millisecond))
}

// transfer sends size random bytes each way through the proxy at once and
// checks both with SHA-256.
func transfer(t *testing.T, proxyAddr string, size int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up := make([]byte, size)
	down := make([]byte, size)
	_, _ = rand.Read(up)
	_, _ = rand.Read(down)
	serverGot := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		wrote := make(chan struct{})
		go func() { _, _ = c.Write(down); _ = c.(*net.TCPConn).CloseWrite(); close(wrote) }()
		h := sha256.New()
		_, _ = io.Copy(h, c)
		<-wrote // closing c before the write ends would cut the download
		serverGot <- [32]byte(h.Sum(nil))
	}()
	c, err := socksDialer(t, proxyAddr, "bob", "builder").Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = c.Write(up); _ = c.(interface{ CloseWrite() error }).CloseWrite() }()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
		t.Fatalf("download checksum mismatch (%d of %d bytes)", n, size)
	}
	select {
	case sum := <-serverGot:
		if sum != sha256.Sum256(up) {
			t.Fatal("upload checksum mismatch")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server never finished")
	}
}

func TestLargeTransferBothPaths(t *testing.T) {
	for name, chain := range map[string][]StageConfig{
		"splice":   defaultTestChain(),
		"buffered": append(defaultTestChain(), stage("test.wrap"), stage("test.iosize", "size", 5000)),
	} {
		t.Run(name, func(t *testing.T) {
			_, addr := startProxy(t, testConfig(chain...))
			transfer(t, addr, 16<<20)
		})
	}
}

// One side's EOF becomes a half-close; the other direction keeps flowing.
func TestHalfClose(t *testing.T) {
	for name, chain := range map[string][]StageConfig{
		"splice":   defaultTestChain(),
		"buffered": append(defaultTestChain(), stage("test.wrap")),
	} {
		t.Run(name, func(t *testing.T) {
			_, addr := startProxy(t, testConfig(chain...))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				// Read the whole request (until the client's half-close),
				// then answer after a pause, then close.
				req, _ := io.ReadAll(c)
				time.Sleep(50 * time.Millisecond)
				_, _ = c.Write(append([]byte("got "), req...))
			}()
			c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write([]byte("question"))
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "got question" {
				t.Fatalf("answer after half-close = %q", got)
			}
		})
	}
}

func TestConcurrentClients(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := []byte("client " + strconv.Itoa(i))
			_, _ = c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client failed: %v", err)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	rt, addr := startProxy(t, testConfig(stage("test.panic")))
	c := rawConn(t, addr)
	_, _ = c.Write(appendGreeting(nil, 0))
	expectClosed(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for rt.panics.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rt.panics.Load() != 1 {
		t.Fatalf("panics = %d", rt.panics.Load())
	}
	// The server still serves.
	c2 := rawConn(t, addr)
	_, _ = c2.Write(appendGreeting(nil, 0))
	expectClosed(t, c2)
}

// A panic in the handshake, which runs on a goroutine of its own (so the
// connection's goroutine keeps a small stack), is raised on the
// connection's goroutine and recovered there like any other: counted,
// logged, the connection closed, the server still serving.
func TestHandshakePanicIsRecovered(t *testing.T) {
	rt, addr := startProxy(t, testConfig(stage("test.auth", "anonymous", true), stage("test.policy", "panic", true)))
	for i := range 2 {
		c := rawConn(t, addr)
		msg := appendGreeting(nil, 0)
		msg = appendRequest(msg, middleware.CmdBind, middleware.Target{Name: "localhost", Port: 9})
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		var method [2]byte
		if _, err := io.ReadFull(c, method[:]); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
		deadline := time.Now().Add(5 * time.Second)
		for rt.panics.Load() <= int64(i) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := rt.panics.Load(); n != int64(i+1) {
			t.Fatalf("after %d panicking handshakes: panics = %d", i+1, n)
		}
	}
}

// A client cannot reach the server's own listeners (the admin port, say)
// through the proxy, whatever address or name it uses.
func TestOwnListenersRefused(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rt.Protect(admin.Addr())
	port := uint16(admin.Addr().(*net.TCPAddr).Port)
	for _, target := range []middleware.Target{
		{Addr: netip.MustParseAddr("127.0.0.1"), Port: port},
		{Addr: netip.MustParseAddr("127.0.0.2"), Port: port},
		{Addr: netip.IPv4Unspecified(), Port: port},
		{Name: "localhost", Port: port},
	} {
		c := rawConn(t, addr)
		handshake(t, c, "bob", "builder")
		_, _ = c.Write(appendRequest(nil, middleware.CmdConnect, target))
		if code, _ := readReply(t, c); code != middleware.ReplyNotAllowed {
			t.Errorf("CONNECT %v: reply %v, want not allowed", target, code)
		}
	}
	// Other ports on loopback stay reachable.
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
