package core

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/socks5d/socks5d/middleware"
)

// BenchmarkConnectionCycle is one full client cycle through the engine on
// loopback: connect, greeting, user/pass, CONNECT, 8-byte echo, close. The
// chain is the test auth stage, so the figure is the engine's own cost
// (allocations include the client's and the echo target's).
func BenchmarkConnectionCycle(b *testing.B) {
	benchCycle(b, testConfig(defaultTestChain()...), nil)
}

// BenchmarkConnectionCycleProxyHeader is BenchmarkConnectionCycle from a
// trusted balancer: a PROXY v2 header in the same write as the handshake.
func BenchmarkConnectionCycleProxyHeader(b *testing.B) {
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.ProxyProtocol.Trusted = []string{"127.0.0.1"}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IP{127, 0, 0, 99}, Port: 40000}, &net.TCPAddr{IP: net.IP{127, 0, 0, 1}, Port: 1080})
	hdr, err := h.Format()
	if err != nil {
		b.Fatal(err)
	}
	benchCycle(b, cfg, hdr)
}

func benchCycle(b *testing.B, cfg *Config, prefix []byte) {
	_, addr := startProxy(b, cfg)
	echo := netip.MustParseAddrPort(echoServer(b, "tcp", "127.0.0.1:0"))
	msg := appendGreeting(append([]byte{}, prefix...), 2)
	msg = appendCredentials(msg, "bob", "builder")
	msg = appendRequest(msg, middleware.CmdConnect, middleware.Target{Addr: echo.Addr(), Port: echo.Port()})
	msg = append(msg, "8 bytes!"...)
	reply := make([]byte, 2+2+10+8)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkRoundTrip is a 64-byte round trip over an established relayed
// connection.
func BenchmarkRoundTrip(b *testing.B) {
	_, addr := startProxy(b, testConfig(defaultTestChain()...))
	echo := echoServer(b, "tcp", "127.0.0.1:0")
	c, err := socksDialer(b, addr, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
