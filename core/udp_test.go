package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Tests of UDP ASSOCIATE. Only loopback is available, so "foreign" means
// another socket on the client's IP (127.0.0.1) with a different port, or
// a host (::1) the client never sent to.

func init() {
	middleware.Register(middleware.Info{Type: "test.policy", New: newTestPolicy})
}

// testPolicy is a destination policy: it refuses the listed ports and,
// by name before any lookup, the listed names; with panic, it panics. It
// records every question about a name: the name and how many addresses
// came with it.
type testPolicy struct {
	deny      []uint16
	denyNames []string
	panic     bool

	mu    sync.Mutex
	asked []string
}

var _ middleware.Policy = (*testPolicy)(nil)

func newTestPolicy(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Deny      []int    `json:"deny_ports"`
		DenyNames []string `json:"deny_names"`
		Panic     bool     `json:"panic"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	tp := &testPolicy{panic: cfg.Panic, denyNames: cfg.DenyNames}
	for _, d := range cfg.Deny {
		tp.deny = append(tp.deny, uint16(d))
	}
	return tp, nil
}

func (tp *testPolicy) Wrap(next middleware.Handler) middleware.Handler { return next }

func (tp *testPolicy) Allowed(s *middleware.Session, cmd middleware.Command, dest middleware.Target, resolved []netip.Addr) (bool, int) {
	if tp.panic {
		panic("test policy")
	}
	if dest.Name != "" {
		tp.mu.Lock()
		tp.asked = append(tp.asked, fmt.Sprintf("%s/%d", dest.Name, len(resolved)))
		tp.mu.Unlock()
	}
	if s == nil || s.User == "" || (cmd != middleware.CmdUDPAssociate && cmd != middleware.CmdBind) {
		return false, 0
	}
	if slices.Contains(tp.denyNames, dest.Name) {
		return false, 1
	}
	if slices.Contains(tp.deny, dest.Port) {
		return false, 2
	}
	return true, -1
}

// questions returns the questions about names so far, "name/addresses".
func (tp *testPolicy) questions() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.asked)
}

// haveIPv6 reports whether ::1 is usable here.
func haveIPv6(t testing.TB) bool {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// udpEcho answers every datagram with "echo:" and its payload until the
// test ends, and remembers where the last one came from.
type udpEcho struct {
	addr netip.AddrPort
	mu   sync.Mutex
	last netip.AddrPort
	n    int
}

// startUDPEcho starts an echo on addr ("127.0.0.1:0").
func startUDPEcho(t testing.TB, addr string) *udpEcho {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	e := &udpEcho{}
	e.serve(t, c)
	return e
}

func (e *udpEcho) serve(t testing.TB, c *net.UDPConn) {
	e.addr = addrPortOf(c.LocalAddr())
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf[5:])
			if err != nil {
				return
			}
			e.mu.Lock()
			e.last, e.n = from, e.n+1
			e.mu.Unlock()
			copy(buf, "echo:")
			_, _ = c.WriteToUDPAddrPort(buf[:5+n], from)
		}
	}()
}

// lastFrom is the source of the last datagram the echo got.
func (e *udpEcho) lastFrom() netip.AddrPort {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// received is how many datagrams the echo got.
func (e *udpEcho) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// target is the echo as a SOCKS destination.
func (e *udpEcho) target() middleware.Target {
	return middleware.Target{Addr: e.addr.Addr(), Port: e.addr.Port()}
}

// udpEchoBoth listens on 127.0.0.1 and, when there is ::1, on [::1] with
// the same port, so that "localhost" reaches it whichever address the
// proxy picks.
func udpEchoBoth(t testing.TB) uint16 {
	t.Helper()
	if !haveIPv6(t) {
		return startUDPEcho(t, "127.0.0.1:0").addr.Port()
	}
	for range 20 {
		c6, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Fatal(err)
		}
		port := c6.LocalAddr().(*net.UDPAddr).Port
		c4, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			c6.Close()
			continue
		}
		(&udpEcho{}).serve(t, c6)
		(&udpEcho{}).serve(t, c4)
		return uint16(port)
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return 0
}

// udpClient is a SOCKS5 UDP client: a control connection and a UDP socket.
type udpClient struct {
	ctrl  net.Conn
	conn  *net.UDPConn
	relay netip.AddrPort
}

// associate opens a UDP association as user (bob or admin) from a UDP
// socket on local; with announce, the request names that socket as the
// client's source (else DST is all zeros). It fails the test unless the
// reply is want, and returns the client on success.
func associate(t testing.TB, proxyAddr, user, local string, announce bool, want middleware.Reply) *udpClient {
	t.Helper()
	pass := map[string]string{"bob": "builder", "admin": "password"}[user]
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)))
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	c := &udpClient{ctrl: ctrl, conn: conn}
	t.Cleanup(c.close)
	_ = ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	msg := appendCredentials(appendGreeting(nil, 2), user, pass)
	dst := middleware.Target{Addr: netip.IPv4Unspecified()}
	if announce {
		src := addrPortOf(conn.LocalAddr())
		dst = middleware.Target{Addr: src.Addr(), Port: src.Port()}
	}
	msg = appendRequest(msg, middleware.CmdUDPAssociate, dst)
	if _, err := ctrl.Write(msg); err != nil {
		t.Fatal(err)
	}
	var hdr [4]byte
	if _, err := readFull(ctrl, hdr[:]); err != nil || hdr != [4]byte{5, 2, 1, 0} {
		t.Fatalf("greeting+auth answer = %v, %v", hdr, err)
	}
	code, bound, err := readReplyErr(ctrl)
	if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("UDP ASSOCIATE reply %#x (%v), want %#x", byte(code), code, byte(want))
	}
	if code != middleware.ReplySucceeded {
		c.close()
		return nil
	}
	_ = ctrl.SetDeadline(time.Time{})
	c.relay = bound
	return c
}

func (c *udpClient) close() { c.ctrl.Close(); c.conn.Close() }

// send sends payload for dest through the relay, with fragment number frag.
func (c *udpClient) send(t testing.TB, dest middleware.Target, frag byte, payload string) {
	t.Helper()
	b := append(appendUDPHeader(nil, frag, dest), payload...)
	if _, err := c.conn.WriteToUDPAddrPort(b, c.relay); err != nil {
		t.Fatal(err)
	}
}

// recv waits up to d for a datagram from the relay and returns the source
// its header names and its payload; ok is false on timeout.
func (c *udpClient) recv(t testing.TB, d time.Duration) (middleware.Target, string, bool) {
	t.Helper()
	buf := make([]byte, 65536)
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return middleware.Target{}, "", false
		}
		t.Fatal(err)
	}
	if from != c.relay {
		t.Fatalf("datagram from %v, not the relay %v", from, c.relay)
	}
	h, hl, err := parseUDPHeader(buf[:n])
	if err != nil {
		t.Fatalf("answer header: %v", err)
	}
	if h.frag != 0 {
		t.Fatalf("answer FRAG %d", h.frag)
	}
	return h.target(), string(buf[hl:n]), true
}

// exchange sends payload to dest and expects the echo back with a header
// naming from.
func (c *udpClient) exchange(t testing.TB, dest middleware.Target, from netip.AddrPort, payload string) {
	t.Helper()
	c.send(t, dest, 0, payload)
	src, got, ok := c.recv(t, 5*time.Second)
	if !ok {
		t.Fatalf("no answer to %q for %v", payload, dest)
	}
	if got != "echo:"+payload {
		t.Fatalf("answer %q, want %q", got, "echo:"+payload)
	}
	if from.IsValid() && (src.Addr != from.Addr() || src.Port != from.Port() || src.Name != "") {
		t.Fatalf("answer's header names %v, want %v", src, from)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readReplyErr reads a reply; it may run outside the test goroutine.
func readReplyErr(c net.Conn) (middleware.Reply, netip.AddrPort, error) {
	var h [4]byte
	if _, err := readFull(c, h[:]); err != nil {
		return 0, netip.AddrPort{}, err
	}
	var addr netip.Addr
	switch h[3] {
	case atypIPv4:
		var a [4]byte
		if _, err := readFull(c, a[:]); err != nil {
			return 0, netip.AddrPort{}, err
		}
		addr = netip.AddrFrom4(a)
	case atypIPv6:
		var a [16]byte
		if _, err := readFull(c, a[:]); err != nil {
			return 0, netip.AddrPort{}, err
		}
		addr = netip.AddrFrom16(a)
	default:
		return 0, netip.AddrPort{}, fmt.Errorf("reply ATYP %d", h[3])
	}
	var p [2]byte
	if _, err := readFull(c, p[:]); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return middleware.Reply(h[1]), netip.AddrPortFrom(addr, uint16(p[0])<<8|uint16(p[1])), nil
}

// stat returns one engine statistic.
func stat(rt *Runtime, key string) int64 {
	for _, s := range rt.Admin().Stats() {
		if s.Key == key {
			return s.Value
		}
	}
	return -1
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startProxyOn is startProxy on another loopback address.
func startProxyOn(t testing.TB, cfg *Config, addr string) (*Runtime, string) {
	t.Helper()
	rt, err := NewRuntime(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return rt, serveOn(t, rt, addr)
}

// serveOn serves SOCKS for rt on addr until the test ends, then shuts rt
// down; it returns the listener's address.
func serveOn(t testing.TB, rt *Runtime, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.ServeSOCKS(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		rt.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func TestUDPAssociateExchanges(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	port := udpEchoBoth(t)
	lo4 := netip.MustParseAddr("127.0.0.1")
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	if c.relay.Addr() != lo4 || c.relay.Port() == 0 {
		t.Fatalf("reply BND = %v, want 127.0.0.1 and a port", c.relay)
	}

	t.Run("ipv4", func(t *testing.T) {
		c.exchange(t, middleware.Target{Addr: lo4, Port: port}, netip.AddrPortFrom(lo4, port), "to v4")
	})
	t.Run("ipv6", func(t *testing.T) {
		if !haveIPv6(t) {
			t.Skip("no ::1 on this machine")
		}
		lo6 := netip.IPv6Loopback()
		c.exchange(t, middleware.Target{Addr: lo6, Port: port}, netip.AddrPortFrom(lo6, port), "to v6")
	})
	t.Run("domain", func(t *testing.T) {
		if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost"); err != nil {
			t.Skip("localhost does not resolve here")
		}
		c.send(t, middleware.Target{Name: "localhost", Port: port}, 0, "to name")
		src, got, ok := c.recv(t, 5*time.Second)
		if !ok || got != "echo:to name" {
			t.Fatalf("answer %q, %v", got, ok)
		}
		if !src.Addr.IsLoopback() || src.Port != port {
			t.Fatalf("answer's header names %v, want a loopback address and port %d", src, port)
		}
	})
	// Bytes are payload bytes, both ways; the association is a session. A
	// datagram is counted after its send returns, so the echo may arrive
	// first: wait for the counters to settle.
	s := rt.Admin().Sessions()
	balanced := func() bool {
		return len(s) == 1 && s[0].Up != 0 && s[0].Down == s[0].Up+int64(len("echo:"))*int64(stat(rt, "udp_datagrams_relayed")/2)
	}
	for deadline := time.Now().Add(5 * time.Second); !balanced() && time.Now().Before(deadline); s = rt.Admin().Sessions() {
		time.Sleep(5 * time.Millisecond)
	}
	if len(s) != 1 || s[0].Command != middleware.CmdUDPAssociate || s[0].User != "bob" {
		t.Fatalf("sessions = %+v", s)
	}
	if !balanced() {
		t.Errorf("up %d, down %d bytes", s[0].Up, s[0].Down)
	}
	if n := stat(rt, "udp_associations"); n != 1 {
		t.Errorf("udp_associations = %d", n)
	}
}

// A client whose control connection arrives over IPv6 gets a relay on ::1.
func TestUDPAssociateOverIPv6(t *testing.T) {
	if !haveIPv6(t) {
		t.Skip("no ::1 on this machine")
	}
	_, addr := startProxyOn(t, testConfig(defaultTestChain()...), "[::1]:0")
	echo := startUDPEcho(t, "127.0.0.1:0")
	c := associate(t, addr, "bob", "[::1]:0", false, middleware.ReplySucceeded)
	if c.relay.Addr() != netip.IPv6Loopback() {
		t.Fatalf("reply BND = %v, want [::1]", c.relay)
	}
	c.exchange(t, echo.target(), echo.addr, "over v6")
}

func TestUDPForeignAndFragDropped(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := startUDPEcho(t, "127.0.0.1:0")
	dest := echo.target()
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	c.exchange(t, dest, echo.addr, "latch") // the client's port is now known

	// Another socket on the client's IP, a different port: dropped.
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.WriteToUDPAddrPort(append(appendUDPHeader(nil, 0, dest), "spoof"...), c.relay); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the foreign datagram to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_foreign") == 1 })
	_ = other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := other.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
		t.Fatalf("the foreign socket got %d bytes back", n)
	}

	// FRAG != 0: dropped and counted; nothing comes back.
	c.send(t, dest, 1, "fragment")
	waitFor(t, "the fragment to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_frag") == 1 })
	if _, got, ok := c.recv(t, 200*time.Millisecond); ok {
		t.Fatalf("a fragment was relayed: %q", got)
	}

	// A host the client never sent to (::1) writing to the outbound
	// socket (dual-stack, on the wildcard): dropped. The echo saw that
	// socket's port.
	if haveIPv6(t) {
		out := echo.lastFrom()
		stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		if _, err := stranger.WriteToUDPAddrPort([]byte("unsolicited"), netip.AddrPortFrom(netip.IPv6Loopback(), out.Port())); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the unsolicited datagram to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_foreign") == 2 })
		if _, got, ok := c.recv(t, 200*time.Millisecond); ok {
			t.Fatalf("an unsolicited datagram was relayed: %q", got)
		}
	}
	// The association still works.
	c.exchange(t, dest, echo.addr, "still")
}

// With DST naming the client's source, only that port is accepted, from
// the first datagram on.
func TestUDPAnnouncedSource(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := startUDPEcho(t, "127.0.0.1:0")
	c := associate(t, addr, "bob", "127.0.0.1:0", true, middleware.ReplySucceeded)
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.WriteToUDPAddrPort(append(appendUDPHeader(nil, 0, echo.target()), "first"...), c.relay); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the foreign datagram to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_foreign") == 1 })
	c.exchange(t, echo.target(), echo.addr, "mine")
	if n := echo.received(); n != 1 {
		t.Fatalf("the echo got %d datagrams, want 1", n)
	}
}

func TestUDPAssociationEndsWithControl(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := startUDPEcho(t, "127.0.0.1:0")
	settle(t)
	before := runtime.NumGoroutine()
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	c.exchange(t, echo.target(), echo.addr, "hello")
	c.ctrl.Close()
	waitFor(t, "the association to end", func() bool { return stat(rt, "udp_associations") == 0 && len(rt.Admin().Sessions()) == 0 })
	// The relay port no longer answers: a connected socket gets the ICMP
	// port unreachable as ECONNREFUSED, or at least no answer.
	probe, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.relay))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	_, _ = probe.Write(append(appendUDPHeader(nil, 0, echo.target()), "late"...))
	_ = probe.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := probe.Read(make([]byte, 100)); err == nil {
		t.Fatalf("the closed relay answered %d bytes", n)
	}
	waitFor(t, "goroutines to return", func() bool { return runtime.NumGoroutine() <= before })
}

func TestUDPIdleTimeout(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.UDP.IdleTimeout = 300 * time.Millisecond
	rt, addr := startProxy(t, cfg)
	echo := startUDPEcho(t, "127.0.0.1:0")
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	// Traffic keeps it open past the idle time...
	var last time.Time
	for range 4 {
		c.exchange(t, echo.target(), echo.addr, "keepalive")
		last = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	// ...silence ends it, and the control connection with it.
	_ = c.ctrl.SetReadDeadline(time.Now().Add(5 * time.Second))
	expectClosed(t, c.ctrl)
	if d := time.Since(last); d < 250*time.Millisecond {
		t.Fatalf("closed %v after the last datagram, before the idle timeout", d)
	}
	waitFor(t, "the association to end", func() bool { return stat(rt, "udp_associations") == 0 })
}

func TestUDPLimits(t *testing.T) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.UDP.MaxAssociations = 2
	cfg.SOCKS.UDP.PerUser = 1
	rt, addr := startProxy(t, cfg)
	bob := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplyNotAllowed) // per user
	associate(t, addr, "admin", "127.0.0.1:0", false, middleware.ReplySucceeded)
	bob.close()
	waitFor(t, "bob's association to end", func() bool { return stat(rt, "udp_associations") == 1 })
	associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	// Total reached: admin's second is refused as over the total.
	cfg2 := testConfig(defaultTestChain()...)
	cfg2.SOCKS.UDP.MaxAssociations = 1
	_, addr2 := startProxy(t, cfg2)
	associate(t, addr2, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	associate(t, addr2, "admin", "127.0.0.1:0", false, middleware.ReplyNotAllowed)
}

func TestUDPPolicyPerDatagram(t *testing.T) {
	echo := startUDPEcho(t, "127.0.0.1:0")
	denied := startUDPEcho(t, "127.0.0.1:0")
	rt, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.policy", "deny_ports", []any{int(denied.addr.Port())})))
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	c.exchange(t, echo.target(), echo.addr, "allowed")
	c.send(t, denied.target(), 0, "refused")
	waitFor(t, "the refusal to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_policy") == 1 })
	if _, got, ok := c.recv(t, 200*time.Millisecond); ok {
		t.Fatalf("a refused datagram was relayed: %q", got)
	}
	if n := denied.received(); n != 0 {
		t.Fatalf("the refused destination got %d datagrams", n)
	}
	// A name reaches the policy twice: alone before the lookup, then with
	// its resolved addresses.
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err == nil && echoOnLocalhost(t) {
		c.send(t, middleware.Target{Name: "localhost", Port: echo.addr.Port()}, 0, "by name")
		if _, got, ok := c.recv(t, 5*time.Second); !ok || got != "echo:by name" {
			t.Fatalf("name: answer %q, %v", got, ok)
		}
		q := rt.Snapshot().Stages[1].Middleware.(*testPolicy).questions()
		if len(q) != 2 || q[0] != "localhost/0" || q[1] == "localhost/0" || !strings.HasPrefix(q[1], "localhost/") {
			t.Fatalf("the policy was asked %q, want localhost alone then with its addresses", q)
		}
	}
	c.exchange(t, echo.target(), echo.addr, "still allowed")
}

// echoOnLocalhost reports whether "localhost" resolves to 127.0.0.1 first,
// so that a datagram for it reaches an echo on 127.0.0.1 only.
func echoOnLocalhost(t testing.TB) bool {
	t.Helper()
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost")
	return err == nil && len(addrs) > 0 && addrs[0].Unmap() == netip.MustParseAddr("127.0.0.1")
}

// settle lets goroutines of earlier tests finish.
func settle(t testing.TB) {
	t.Helper()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
}

// Many associations opened and closed leave no socket and no goroutine
// behind.
func TestUDPManyAssociationsNoLeak(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := startUDPEcho(t, "127.0.0.1:0")
	settle(t)
	fds0, g0 := openFDs(t), runtime.NumGoroutine()
	const total, batch = 200, 50
	peakFDs, peakG := 0, 0
	for i := 0; i < total; i += batch {
		clients := make([]*udpClient, batch)
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for j := range clients {
			clients[j] = associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
		}
		for j, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := append(appendUDPHeader(nil, 0, echo.target()), "n"+strconv.Itoa(i+j)...)
				if _, err := c.conn.WriteToUDPAddrPort(b, c.relay); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, 1500)
				_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _, err := c.conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.HasSuffix(buf[:n], []byte("echo:n"+strconv.Itoa(i+j))) {
					errs <- fmt.Errorf("association %d: answer %q", i+j, buf[:n])
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := stat(rt, "udp_associations"); n != batch {
			t.Fatalf("udp_associations = %d with %d open", n, batch)
		}
		peakFDs, peakG = max(peakFDs, openFDs(t)), max(peakG, runtime.NumGoroutine())
		for _, c := range clients {
			c.close()
		}
	}
	waitFor(t, "every association to end", func() bool { return stat(rt, "udp_associations") == 0 && len(rt.Admin().Sessions()) == 0 })
	var fds1, g1 int
	waitFor(t, "descriptors and goroutines to return", func() bool {
		fds1, g1 = openFDs(t), runtime.NumGoroutine()
		return fds1 <= fds0 && g1 <= g0
	})
	t.Logf("%d associations (%d at a time): descriptors %d before, %d at peak, %d after; goroutines %d before, %d at peak, %d after",
		total, batch, fds0, peakFDs, fds1, g0, peakG, g1)
	if n := stat(rt, "udp_datagrams_relayed"); n != 2*total {
		t.Errorf("udp_datagrams_relayed = %d, want %d", n, 2*total)
	}
}

func TestUDPAssociateWithPySocks(t *testing.T) {
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import socks").Run() == nil {
			python = path
			break
		}
	}
	if python == "" {
		t.Skip("python3 with PySocks (Debian: python3-socks) is not installed")
	}
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := startUDPEcho(t, "127.0.0.1:0")
	ap := netip.MustParseAddrPort(addr)
	const script = `
import socket, sys, socks
proxy_port, echo_port = int(sys.argv[1]), int(sys.argv[2])
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, "127.0.0.1", proxy_port, username="bob", password="builder")
s.settimeout(5)
for i in range(3):
    s.sendto(b"py%d" % i, ("127.0.0.1", echo_port))
    data, addr = s.recvfrom(2048)
    print(data.decode(), addr[0], addr[1])
s.close()
`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", script, strconv.Itoa(int(ap.Port())), strconv.Itoa(int(echo.addr.Port()))).CombinedOutput()
	if err != nil {
		t.Fatalf("PySocks: %v\n%s", err, out)
	}
	want := ""
	for i := range 3 {
		want += fmt.Sprintf("echo:py%d 127.0.0.1 %d\n", i, echo.addr.Port())
	}
	if string(out) != want {
		t.Fatalf("PySocks got:\n%s\nwant:\n%s", out, want)
	}
}

func TestUDPHeaderCodec(t *testing.T) {
	v4 := middleware.Target{Addr: netip.MustParseAddr("192.0.2.1"), Port: 53}
	v6 := middleware.Target{Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}
	name := middleware.Target{Name: "example.com", Port: 80}
	for _, tt := range []middleware.Target{v4, v6, name} {
		b := append(appendUDPHeader(nil, 0, tt), "data"...)
		h, n, err := parseUDPHeader(b)
		if err != nil || h.target() != tt || string(b[n:]) != "data" || h.frag != 0 {
			t.Errorf("%v: parsed %+v, %d, %v", tt, h, n, err)
		}
		if udpHeaderLen(tt.Addr) != n && tt.Name == "" {
			t.Errorf("%v: udpHeaderLen %d, header %d", tt, udpHeaderLen(tt.Addr), n)
		}
	}
	if b := appendUDPHeader(nil, 0, v4); !bytes.Equal(b, []byte{0, 0, 0, 1, 192, 0, 2, 1, 0, 53}) {
		t.Errorf("IPv4 header % x", b)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        {0, 0, 0},
		"rsv":          {0, 1, 0, 1, 1, 2, 3, 4, 0, 80},
		"cut ipv4":     {0, 0, 0, 1, 1, 2, 3, 4, 0},
		"cut ipv6":     {0, 0, 0, 4, 1, 2, 3},
		"cut name":     {0, 0, 0, 3, 5, 'a', 'b'},
		"no name len":  {0, 0, 0, 3},
		"empty name":   {0, 0, 0, 3, 0, 0, 80},
		"unknown atyp": {0, 0, 0, 9, 1, 2, 3, 4, 0, 80},
	} {
		if _, _, err := parseUDPHeader(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseUDPHeader(f *testing.F) {
	f.Add(appendUDPHeader(nil, 0, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 7}))
	f.Add(appendUDPHeader(nil, 1, middleware.Target{Addr: netip.MustParseAddr("::1"), Port: 7}))
	f.Add(append(appendUDPHeader(nil, 0, middleware.Target{Name: "localhost", Port: 53}), "payload"...))
	f.Add([]byte{0, 0, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseUDPHeader(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("header length %d > %d", n, len(b))
		}
		if got := appendUDPHeader(nil, h.frag, h.target()); !bytes.Equal(got, b[:n]) {
			t.Fatalf("round trip: % x became % x", b[:n], got)
		}
	})
}

func TestConfigBindAndUDP(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := LoadConfig(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := settingsOf(cfg)
	want := Settings{
		Bind: BindSettings{Timeout: 60 * time.Second},
		UDP:  UDPSettings{IdleTimeout: 2 * time.Minute, MaxAssociations: 1024, PerUser: 32},
	}
	if s.Bind != want.Bind || s.UDP != want.UDP {
		t.Fatalf("defaults: %+v %+v", s.Bind, s.UDP)
	}
	cfg, err = LoadConfig(LoadOptions{
		File:    writeFile(t, "socks:\n  bind: {address: 127.0.0.1, timeout: 5s}\n  udp: {ports: 40000-40999, advertise: 192.0.2.7, idle_timeout: 30s, max_associations: 0, per_user: 4}\n"),
		Environ: []string{"SOCKS5D_SOCKS__UDP__PER_USER=5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s = settingsOf(cfg)
	if s.Bind.Address != netip.MustParseAddr("127.0.0.1") || s.Bind.Timeout != 5*time.Second ||
		s.UDP.PortLow != 40000 || s.UDP.PortHigh != 40999 || s.UDP.Advertise != netip.MustParseAddr("192.0.2.7") ||
		s.UDP.IdleTimeout != 30*time.Second || s.UDP.MaxAssociations != 0 || s.UDP.PerUser != 5 {
		t.Fatalf("loaded: %+v %+v", s.Bind, s.UDP)
	}
	// A port range is a number or text, in the file and in the environment
	// (socks.udp.ports: 40000 was refused once: "must be a string").
	for _, tc := range []struct {
		yaml, env string
		lo, hi    uint16
	}{
		{yaml: "socks:\n  udp:\n    ports: 0\n"},
		{yaml: "socks:\n  udp:\n    ports: \"0\"\n"},
		{yaml: "socks:\n  udp:\n    ports: 40000\n", lo: 40000, hi: 40000},
		{yaml: "socks:\n  udp:\n    ports: '40000'\n", lo: 40000, hi: 40000},
		{yaml: "socks:\n  udp:\n    ports: 40000-40999\n", lo: 40000, hi: 40999},
		{yaml: "socks:\n  udp:\n    ports: \"40000 - 40999\"\n", lo: 40000, hi: 40999},
		{env: "40000", lo: 40000, hi: 40000},
		{env: "0"},
		{env: "40000-40999", lo: 40000, hi: 40999},
	} {
		opts := LoadOptions{}
		if tc.yaml != "" {
			opts.File = writeFile(t, tc.yaml)
		} else {
			opts.Environ = []string{"SOCKS5D_SOCKS__UDP__PORTS=" + tc.env}
		}
		cfg, err := LoadConfig(opts)
		if err != nil {
			t.Errorf("%q%q: %v", tc.yaml, tc.env, err)
			continue
		}
		if s := settingsOf(cfg); s.UDP.PortLow != tc.lo || s.UDP.PortHigh != tc.hi {
			t.Errorf("%q%q: ports %d-%d, want %d-%d", tc.yaml, tc.env, s.UDP.PortLow, s.UDP.PortHigh, tc.lo, tc.hi)
		}
	}
	for yaml, key := range map[string]string{
		"socks:\n  udp: {ports: 5-1}\n":            "socks.udp.ports",
		"socks:\n  udp: {ports: true}\n":           "socks.udp.ports",
		"socks:\n  udp: {ports: 1.5}\n":            "socks.udp.ports",
		"socks:\n  udp: {ports: [1, 2]}\n":         "socks.udp.ports",
		"socks:\n  udp: {ports: abc}\n":            "socks.udp.ports",
		"socks:\n  udp: {ports: 0-10}\n":           "socks.udp.ports",
		"socks:\n  udp: {ports: 70000}\n":          "socks.udp.ports",
		"socks:\n  udp: {advertise: 0.0.0.0}\n":    "socks.udp.advertise",
		"socks:\n  udp: {advertise: host}\n":       "socks.udp.advertise",
		"socks:\n  udp: {idle_timeout: 0s}\n":      "socks.udp.idle_timeout",
		"socks:\n  udp: {max_associations: -1}\n":  "socks.udp.max_associations",
		"socks:\n  udp: {per_user: -1}\n":          "socks.udp.per_user",
		"socks:\n  udp: {port: 1}\n":               "port",
		"socks:\n  bind: {address: '::'}\n":        "socks.bind.address",
		"socks:\n  bind: {address: example.com}\n": "socks.bind.address",
		"socks:\n  bind: {timeout: -1s}\n":         "socks.bind.timeout",
	} {
		_, err := LoadConfig(LoadOptions{File: writeFile(t, yaml)})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %v, want one naming %s", yaml, err, key)
		}
	}
}

// BenchmarkUDPRelay round-trips datagrams client → proxy → echo → proxy →
// client; allocations include the client's and the echo's.
func BenchmarkUDPRelay(b *testing.B) {
	_, addr := startProxy(b, testConfig(defaultTestChain()...))
	echo := startUDPEcho(b, "127.0.0.1:0")
	c := associate(b, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	msg := append(appendUDPHeader(nil, 0, echo.target()), make([]byte, 512)...)
	buf := make([]byte, 2048)
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := c.conn.WriteToUDPAddrPort(msg, c.relay); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.conn.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// A panic while relaying a datagram ends the association, not the server.
func TestUDPPanicEndsAssociation(t *testing.T) {
	rt, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.policy", "panic", true)))
	echo := startUDPEcho(t, "127.0.0.1:0")
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	c.send(t, echo.target(), 0, "boom")
	_ = c.ctrl.SetReadDeadline(time.Now().Add(5 * time.Second))
	expectClosed(t, c.ctrl)
	waitFor(t, "the association to end", func() bool { return stat(rt, "udp_associations") == 0 })
	if n := stat(rt, "panics_recovered"); n != 1 {
		t.Fatalf("panics_recovered = %d", n)
	}
}

// testPacer lets `allow` datagrams through in each direction, then refuses.
type testPacer struct {
	mu       sync.Mutex
	up, down int
}

func (p *testPacer) AllowBytes(up bool, _ int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := &p.down
	if up {
		n = &p.up
	}
	if *n == 0 {
		return false
	}
	*n--
	return true
}

func init() {
	middleware.Register(middleware.Info{Type: "test.pacer", New: func(p middleware.Params) (middleware.Middleware, error) {
		var cfg struct {
			Allow int `json:"allow"`
		}
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		return middleware.MiddlewareFunc(func(next middleware.Handler) middleware.Handler {
			return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
				s.Pacer = &testPacer{up: cfg.Allow, down: cfg.Allow}
				return next.ServeConn(ctx, s)
			})
		}), nil
	}})
}

// A rate-limiting stage's Pacer is asked for every datagram; what it
// refuses is dropped and counted.
func TestUDPPacerDropsOverLimit(t *testing.T) {
	echo := startUDPEcho(t, "127.0.0.1:0")
	rt, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.pacer", "allow", 2)))
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)
	c.exchange(t, echo.target(), echo.addr, "one")
	c.exchange(t, echo.target(), echo.addr, "two")
	c.send(t, echo.target(), 0, "three")
	waitFor(t, "the drop to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_rate") == 1 })
	if _, got, ok := c.recv(t, 200*time.Millisecond); ok {
		t.Fatalf("a datagram over the limit was relayed: %q", got)
	}
}
