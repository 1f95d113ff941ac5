package core

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// fakeHost stands in for the kernel's idea of the host's addresses; an
// address may be added while the server runs.
type fakeHost struct {
	mu    sync.Mutex
	addrs map[netip.Addr]bool // with the zone of their interface, if any
	asked int
}

func (h *fakeHost) add(a string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs[netip.MustParseAddr(a)] = true
}

func (h *fakeHost) isLocal(ip netip.Addr) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked++
	return h.addrs[ip] || h.addrs[ip.WithZone("")], nil
}

// A link-local destination given with a zone reaches a listener on all
// addresses ([::]) when the address is the host's: the proxy refuses it.
func TestOwnListenerZonedLinkLocal(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	host := &fakeHost{addrs: map[netip.Addr]bool{}}
	host.add("fe80::1234%lo")
	rt.isLocal = host.isLocal
	// The port of a loopback listener stands for an admin port on [::];
	// nothing listens on all addresses.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	rt.Protect(&net.TCPAddr{IP: net.IPv6unspecified, Port: port})
	for _, name := range []string{"fe80::1234%lo", "::1%lo", "::1", "127.0.0.1"} {
		c := rawConn(t, addr)
		handshake(t, c, "bob", "builder")
		_, _ = c.Write(appendRequest(nil, middleware.CmdConnect, middleware.Target{Name: name, Port: uint16(port)}))
		if code, _ := readReply(t, c); code != middleware.ReplyNotAllowed {
			t.Errorf("CONNECT %s port %d: reply %v, want not allowed", name, port, code)
		}
	}
}

// The host's addresses are asked for at each dial, not read once at
// start-up: an address gained later is protected, one lost is not; the
// kernel is asked only for a listener's port.
func TestProtectAsksAtDialTime(t *testing.T) {
	host := &fakeHost{addrs: map[netip.Addr]bool{}}
	rt := &Runtime{isLocal: host.isLocal}
	rt.Protect(&net.TCPAddr{IP: net.IPv4zero, Port: 1080}, &net.TCPAddr{IP: net.IPv6loopback, Port: 8080})
	p := rt.protected.Load()
	gained := netip.MustParseAddrPort("[fe80::5%eth7]:1080")
	if p.covers(gained) {
		t.Fatal("covers an address the host does not have")
	}
	host.add("fe80::5%eth7")
	if !p.covers(gained) {
		t.Error("an address gained after Protect is not protected")
	}
	if !p.covers(netip.MustParseAddrPort("[::ffff:127.0.0.9]:1080")) || !p.covers(netip.MustParseAddrPort("[::1%lo]:8080")) {
		t.Error("loopback not protected")
	}
	asked := host.asked
	if p.covers(netip.MustParseAddrPort("[fe80::5%eth7]:8080")) || p.covers(netip.MustParseAddrPort("[fe80::5%eth7]:443")) {
		t.Error("a port no listener has on that address is covered")
	}
	if host.asked != asked {
		t.Errorf("asked about the host's addresses %d times for ports no listener has on all addresses", host.asked-asked)
	}
	// An error from the kernel fails closed.
	rt.isLocal = func(netip.Addr) (bool, error) { return false, errors.New("test: no answer") }
	rt.Protect(&net.TCPAddr{IP: net.IPv4zero, Port: 1080})
	if !rt.protected.Load().covers(netip.MustParseAddrPort("[fd00::9]:1080")) {
		t.Error("an unanswered question about the host's addresses lets the dial through")
	}
}

// Interface addresses have no zone; a zoned destination matches them.
func TestLocalInAddrsIgnoresZones(t *testing.T) {
	_, n, _ := net.ParseCIDR("fe80::1234/64")
	n.IP = net.ParseIP("fe80::1234")
	addrs := []net.Addr{n, &net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}}
	for ip, want := range map[string]bool{
		"fe80::1234%lo": true, "fe80::1234%2": true, "fe80::1234": true,
		"::ffff:127.0.0.1": true, "fe80::1235%lo": false,
	} {
		if got := localInAddrs(addrs, netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: local = %v, want %v", ip, got, want)
		}
	}
}

// The real answer: loopback and every interface address are the host's
// (the kernel is only asked; nothing is sent).
func TestLocalAddrKernel(t *testing.T) {
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.9.9.9"), netip.MustParseAddr("::ffff:127.0.0.1")}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		want = append(want, netip.IPv6Loopback())
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				// Link-local addresses come without the zone a route needs.
				if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.IsLinkLocalUnicast() {
					want = append(want, ip)
				}
			}
		}
	}
	for _, ip := range want {
		if local, err := localAddr(ip); !local || err != nil {
			t.Errorf("%s: local = %v (%v), want true", ip, local, err)
		}
	}
	if local, err := localAddr(netip.MustParseAddr("224.0.0.1")); local || err != nil {
		t.Errorf("multicast: local = %v (%v), want false", local, err)
	}
}
