package core

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/socks5d/socks5d/middleware"
)

func init() {
	middleware.Register(middleware.Info{Type: "test.client", New: newTestClient})
}

// seenClients receives, from the test.client stage, each session's Client
// and Via once its chain has returned.
var seenClients = make(chan [2]netip.AddrPort, 64)

type testClient struct{}

func newTestClient(middleware.Params) (middleware.Middleware, error) { return testClient{}, nil }

func (testClient) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		err := next.ServeConn(ctx, s)
		select {
		case seenClients <- [2]netip.AddrPort{s.Client, s.Via}:
		default:
		}
		return err
	})
}

// proxyConfig is an anonymous proxy that trusts trusted as balancers.
func proxyConfig(trusted ...string) *Config {
	cfg := testConfig(stage("test.client"), stage("test.auth", "anonymous", true))
	cfg.SOCKS.ProxyProtocol.Trusted = trusted
	cfg.SOCKS.HandshakeTimeout = 500 * time.Millisecond
	return cfg
}

// proxyHeader formats a PROXY header of version 1 or 2 saying the
// connection c comes from src.
func formatHeader(t testing.TB, version byte, src netip.AddrPort, c net.Conn) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(src), c.RemoteAddr())
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// connectRequest is a NoAuth greeting and a CONNECT to target.
func connectRequest(t testing.TB, target string) []byte {
	t.Helper()
	ap := netip.MustParseAddrPort(target)
	ip := ap.Addr().As4()
	return []byte{5, 1, 0, 5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(ap.Port() >> 8), byte(ap.Port())}
}

func statOf(t testing.TB, rt *Runtime, key string) int64 {
	t.Helper()
	for _, s := range rt.Admin().Stats() {
		if s.Key == key {
			return s.Value
		}
	}
	t.Fatalf("no STATS key %s", key)
	return 0
}

func drainSeen() {
	for {
		select {
		case <-seenClients:
		default:
			return
		}
	}
}

// A trusted balancer's v1 or v2 header gives the session its client: the
// header's source, with the balancer kept as Via; SESSIONS lists the
// client. The handshake and early data may come in the same write as the
// header, or after it.
func TestProxyHeaderSetsClient(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	rt, addr := startProxy(t, proxyConfig("127.0.0.1/32"))
	drainSeen()
	for i, tt := range []struct {
		version   byte
		pipelined bool
	}{{1, true}, {1, false}, {2, true}, {2, false}} {
		src := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.99"), uint16(40000+i))
		c := rawConn(t, addr)
		hdr := formatHeader(t, tt.version, src, c)
		req := connectRequest(t, echo)
		if tt.pipelined {
			if _, err := c.Write(append(append(hdr, req...), "ping"...)); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := c.Write(hdr); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(append(req, "ping"...)); err != nil {
				t.Fatal(err)
			}
		}
		if got := readN(t, c, 2+10); got[1] != 0 || got[3] != 0 {
			t.Fatalf("v%d: replies %v", tt.version, got)
		}
		if got := string(readN(t, c, 4)); got != "ping" {
			t.Fatalf("v%d: echo %q", tt.version, got)
		}
		var listed bool
		for _, si := range rt.Admin().Sessions() {
			listed = listed || si.Client == src
		}
		if !listed {
			t.Errorf("v%d: SESSIONS does not list client %v: %+v", tt.version, src, rt.Admin().Sessions())
		}
		c.Close()
		select {
		case got := <-seenClients:
			via := addrPortOf(c.LocalAddr())
			if got[0] != src || got[1] != via {
				t.Errorf("v%d: stage saw client %v via %v, want %v via %v", tt.version, got[0], got[1], src, via)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end")
		}
	}
	if got := statOf(t, rt, "proxy_protocol_accepted"); got != 4 {
		t.Errorf("proxy_protocol_accepted = %d, want 4", got)
	}
}

// A LOCAL header (v2) or UNKNOWN (v1) is the balancer's own connection: the
// client is the socket's peer and there is no Via.
func TestProxyHeaderLocal(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	rt, addr := startProxy(t, proxyConfig("127.0.0.1"))
	drainSeen()
	for _, hdr := range [][]byte{
		[]byte("PROXY UNKNOWN\r\n"),
		append(append([]byte{}, proxyproto.SIGV2...), 0x20, 0x00, 0, 0),
	} {
		c := rawConn(t, addr)
		if _, err := c.Write(append(hdr, connectRequest(t, echo)...)); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, c, 2+10); got[1] != 0 || got[3] != 0 {
			t.Fatalf("%q: replies %v", hdr, got)
		}
		c.Close()
		got := <-seenClients
		if want := addrPortOf(c.LocalAddr()); got[0] != want || got[1].IsValid() {
			t.Errorf("%q: client %v via %v, want %v and no via", hdr, got[0], got[1], want)
		}
	}
	if got := statOf(t, rt, "proxy_protocol_accepted"); got != 2 {
		t.Errorf("proxy_protocol_accepted = %d, want 2", got)
	}
}

// From a source that is not trusted (or with the PROXY protocol off), a
// header is refused: the connection is closed and counted. A plain SOCKS
// client from there is served as before.
func TestProxyHeaderUntrusted(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	for _, trusted := range [][]string{nil, {"127.0.0.2/32", "::1"}} {
		rt, addr := startProxy(t, proxyConfig(trusted...))
		// STATS shows the counters while the protocol is on, or once a
		// header came anyway.
		if want := map[bool]int64{true: 0, false: -1}[len(trusted) > 0]; stat(rt, "proxy_protocol_refused") != want {
			t.Errorf("trusted %v: proxy_protocol_refused %d before any header, want %d", trusted, stat(rt, "proxy_protocol_refused"), want)
		}
		for _, version := range []byte{1, 2} {
			c := rawConn(t, addr)
			hdr := formatHeader(t, version, netip.MustParseAddrPort("127.0.0.99:4000"), c)
			if _, err := c.Write(append(hdr, connectRequest(t, echo)...)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}
		if got := statOf(t, rt, "proxy_protocol_refused"); got != 2 {
			t.Errorf("trusted %v: proxy_protocol_refused = %d, want 2", trusted, got)
		}
		c := rawConn(t, addr)
		if _, err := c.Write(append(connectRequest(t, echo), "ping"...)); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, c, 2+10+4); got[1] != 0 || got[3] != 0 || string(got[12:]) != "ping" {
			t.Errorf("trusted %v: a plain client got %q", trusted, got)
		}
	}
}

// From a trusted source, a connection without a header, with a malformed
// or truncated one, or one that sends nothing, is closed: at once when the
// bytes are wrong, at socks.handshake_timeout when they never come; each is
// counted.
func TestProxyHeaderRefused(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	v2 := func(b ...byte) []byte { return append(append([]byte{}, proxyproto.SIGV2...), b...) }
	for _, tt := range []struct {
		name string
		send []byte
		stat string
	}{
		{"no header", connectRequest(t, echo), "proxy_protocol_missing"},
		{"v1 bad family", []byte("PROXY TCP5 127.0.0.99 127.0.0.1 4000 1080\r\n"), "proxy_protocol_invalid"},
		{"v1 bad address", []byte("PROXY TCP4 127.0.0.300 127.0.0.1 4000 1080\r\n"), "proxy_protocol_invalid"},
		{"v1 no CRLF", []byte("PROXY TCP4 127.0.0.99 127.0.0.1 4000 1080\n"), "proxy_protocol_invalid"},
		{"v1 too long", append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 120)...), "proxy_protocol_invalid"},
		{"v2 bad command", v2(0x2F, 0x11, 0, 12), "proxy_protocol_invalid"},
		{"v2 unix source", v2(0x21, 0x31, 0, 216), "proxy_protocol_invalid"},
		{"v2 length past the address", v2(0x21, 0x11, 0, 4, 127, 0, 0, 99), "proxy_protocol_invalid"},
		// Truncated and slow: the rest never comes; the deadline closes it.
		{"v2 truncated", v2(0x21, 0x11, 0, 12, 127, 0, 0), "proxy_protocol_invalid"},
		{"v1 truncated", []byte("PROX"), "proxy_protocol_invalid"},
		{"silent", nil, "proxy_protocol_invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt, addr := startProxy(t, proxyConfig("127.0.0.0/8"))
			c := rawConn(t, addr)
			if len(tt.send) > 0 {
				if _, err := c.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			expectClosed(t, c) // by the server: rawConn's own deadline is 10s
			if got := statOf(t, rt, tt.stat); got != 1 {
				t.Errorf("%s = %d, want 1", tt.stat, got)
			}
			if got := statOf(t, rt, "proxy_protocol_accepted"); got != 0 {
				t.Errorf("proxy_protocol_accepted = %d", got)
			}
			if n := len(rt.Admin().Sessions()); n != 0 {
				t.Errorf("%d sessions open", n)
			}
		})
	}
}

// socks.proxy_protocol.trusted takes CIDRs and addresses (from the
// environment, comma-separated) and names the item at fault.
func TestProxyTrustedConfig(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{Environ: []string{"SOCKS5D_SOCKS__PROXY_PROTOCOL__TRUSTED=10.0.0.0/8, ::ffff:192.0.2.1,2001:db8::/32"}})
	if err != nil {
		t.Fatal(err)
	}
	got := settingsOf(cfg).ProxyTrusted
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(got) != len(want) {
		t.Fatalf("trusted %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("trusted[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	s := settingsOf(cfg)
	for a, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.1": true, "192.0.2.2": false, "2001:db8::7": true, "127.0.0.1": false} {
		if got := s.trusts(netip.MustParseAddr(a)); got != want {
			t.Errorf("trusts(%s) = %v, want %v", a, got, want)
		}
	}
	_, err = LoadConfig(LoadOptions{Environ: []string{"SOCKS5D_SOCKS__PROXY_PROTOCOL__TRUSTED=10.0.0.0/8,balancer.example"}})
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "socks.proxy_protocol.trusted[1]" {
		t.Errorf("a name in the list: %v", err)
	}
}

// The path a trusted connection's first bytes take, over a real conn (a
// pipe, with the reader's buffer, the deadline and the early bytes handed
// to the handshake), agrees with the library reading the same bytes from
// memory: the same header or refusal, and the same greeting after it.
func FuzzProxyHeader(f *testing.F) {
	v1 := []byte("PROXY TCP4 127.0.0.99 127.0.0.1 4000 1080\r\n")
	h2 := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IP{127, 0, 0, 99}, Port: 4000}, &net.TCPAddr{IP: net.IP{127, 0, 0, 1}, Port: 1080})
	v2, _ := h2.Format()
	greeting := []byte{5, 2, 0, 2}
	for _, seed := range [][]byte{
		v1, append(append([]byte{}, v1...), greeting...), v2, append(append([]byte{}, v2...), greeting...),
		[]byte("PROXY UNKNOWN\r\n\x05\x01\x00"), greeting, nil, []byte("PROXY TCP6 ::1 ::1 1 2\r\n"),
		append(append([]byte{}, proxyproto.SIGV2...), 0x21, 0x11, 0, 12),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// The library on memory.
		mr := bytes.NewReader(in)
		br := bufio.NewReader(mr)
		want, werr := proxyproto.Read(br)
		var rest []byte
		if werr == nil {
			rest = in[len(in)-br.Buffered()-mr.Len():]
		}

		// The server's path on a conn.
		server, client := net.Pipe()
		defer server.Close()
		go func() {
			_, _ = client.Write(in)
			client.Close()
		}()
		got, gerr := readProxyHeader(server, time.Now().Add(5*time.Second))
		switch {
		case errors.Is(werr, proxyproto.ErrNoProxyProtocol):
			if !errors.Is(gerr, ErrProxyMissing) {
				t.Fatalf("no signature: got %v", gerr)
			}
			return
		case werr != nil:
			if !errors.Is(gerr, ErrProxyInvalid) {
				t.Fatalf("library: %v; got %v", werr, gerr)
			}
			return
		case !want.Command.IsLocal() && (want.SourceAddr == nil || !addrPortOf(want.SourceAddr).IsValid()):
			if !errors.Is(gerr, ErrProxyInvalid) {
				t.Fatalf("source %v: got %v", want.SourceAddr, gerr)
			}
			return
		case gerr != nil:
			t.Fatalf("library read %+v; got %v", want, gerr)
		}
		if want.Command.IsLocal() {
			if got.client.IsValid() {
				t.Fatalf("LOCAL header gave client %v", got.client)
			}
		} else if src := addrPortOf(want.SourceAddr); got.client != netip.AddrPortFrom(src.Addr().Unmap(), src.Port()) {
			t.Fatalf("client %v, library %v", got.client, want.SourceAddr)
		}

		// The greeting after the header: read through the handshake's
		// reader seeded with the early bytes, as the terminal does.
		h := getHSReader(server)
		defer h.release()
		h.w = copy(h.buf[:], got.early)
		g, err := next(h, parseGreeting)
		wg, _, werr2 := parseGreeting(rest)
		switch {
		case werr2 == nil:
			if err != nil || !bytes.Equal(g.methods, wg.methods) {
				t.Fatalf("greeting %v (%v), want %v", g.methods, err, wg.methods)
			}
		case errors.Is(werr2, errShort):
			if !errors.Is(err, io.EOF) {
				t.Fatalf("short greeting: %v", err)
			}
		default:
			if !errors.Is(err, werr2) {
				t.Fatalf("greeting error %v, want %v", err, werr2)
			}
		}
	})
}

// UDP ASSOCIATE through a balancer: the balancer relays only the control
// connection; the client sends its datagrams straight to the relay, from
// its own address, which the header named. Those are relayed; datagrams
// from the balancer's address are foreign.
func TestProxyHeaderUDP(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.ProxyProtocol.Trusted = []string{"127.0.0.1"}
	rt, addr := startProxy(t, cfg)
	echo := startUDPEcho(t, "127.0.0.1:0")

	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 99)}) // the real client
	if err != nil {
		t.Fatal(err)
	}
	ctrl := rawConn(t, addr) // through the "balancer", 127.0.0.1
	c := &udpClient{ctrl: ctrl, conn: conn}
	t.Cleanup(c.close)
	msg := formatHeader(t, 2, netip.MustParseAddrPort("127.0.0.99:45000"), ctrl)
	msg = appendCredentials(appendGreeting(msg, 2), "bob", "builder")
	msg = appendRequest(msg, middleware.CmdUDPAssociate, middleware.Target{Addr: netip.IPv4Unspecified()})
	if _, err := ctrl.Write(msg); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, ctrl, 4); !bytes.Equal(got, []byte{5, 2, 1, 0}) {
		t.Fatalf("greeting+auth answer %v", got)
	}
	code, bound, err := readReplyErr(ctrl)
	if err != nil || code != middleware.ReplySucceeded {
		t.Fatalf("UDP ASSOCIATE reply %v, %v", code, err)
	}
	_ = ctrl.SetDeadline(time.Time{})
	c.relay = bound

	// From the balancer's address: not the client's.
	lb, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if _, err := lb.WriteToUDPAddrPort(append(appendUDPHeader(nil, 0, echo.target()), "from-lb"...), c.relay); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the balancer's datagram to be dropped", func() bool { return stat(rt, "udp_datagrams_dropped_foreign") == 1 })

	// From the client's own address: relayed both ways.
	c.exchange(t, echo.target(), echo.addr, "real-client")
}

// instance_name is printable text of at most 128 octets.
func TestInstanceNameConfig(t *testing.T) {
	for _, v := range []string{"proxy-1", "proxy 1 (eu-west)", "ü-1"} {
		cfg, err := LoadConfig(LoadOptions{Environ: []string{"SOCKS5D_INSTANCE_NAME=" + v}})
		if err != nil || cfg.InstanceName(nil) != v {
			t.Errorf("instance_name %q: %v", v, err)
		}
	}
	for _, v := range []string{"a\tb", "a\x00", string([]byte{0xff}), strings.Repeat("x", 129)} {
		_, err := LoadConfig(LoadOptions{Environ: []string{"SOCKS5D_INSTANCE_NAME=" + v}})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != "instance_name" {
			t.Errorf("instance_name %q: %v", v, err)
		}
	}
	host, _ := os.Hostname()
	cfg := &Config{SOCKS: SOCKSConfig{Port: 1080}}
	if got := cfg.InstanceName(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1081}); got != host+":1081" {
		t.Errorf("default instance name %q, want %s:1081", got, host)
	}
}

// TestShutdownEndsProxyHeaderRead: a connection from a trusted balancer
// whose PROXY header has not fully arrived is not in the session table
// yet; Shutdown still closes it at once instead of waiting out the
// handshake timeout.
func TestShutdownEndsProxyHeaderRead(t *testing.T) {
	cfg := proxyConfig("127.0.0.0/8")
	cfg.SOCKS.HandshakeTimeout = time.Minute
	rt := newRuntime(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.ServeSOCKS(serveCtx, ln) }()
	c := rawConn(t, ln.Addr().String())
	if _, err := c.Write([]byte("PROX")); err != nil {
		t.Fatal(err)
	}
	key := "listener." + DefaultListener + ".connections"
	waitFor(t, "the connection to be accepted", func() bool { return statOf(t, rt, key) == 1 })
	stopServing() // as socks5dmain does: stop accepting, then Shutdown
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { rt.Shutdown(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waits for a PROXY header after 5s")
	}
	expectClosed(t, c)
}
