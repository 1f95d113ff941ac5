package middleware_test

import (
	"net/netip"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

func TestClientNetwork(t *testing.T) {
	for _, tt := range []struct {
		addr         string
		bits4, bits6 int
		want         string
	}{
		{"127.0.1.40", 24, 64, "127.0.1.0/24"},
		{"::ffff:127.0.1.40", 24, 64, "127.0.1.0/24"},
		{"2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 24, 48, "2001:db8:1::/48"},
		{"192.0.2.9", 32, 64, "192.0.2.9/32"},
		{"192.0.2.9", 33, 64, "invalid Prefix"}, // out of range: the shared group
	} {
		if got := middleware.ClientNetwork(netip.MustParseAddr(tt.addr), tt.bits4, tt.bits6).String(); got != tt.want {
			t.Errorf("ClientNetwork(%s, %d, %d) = %s, want %s", tt.addr, tt.bits4, tt.bits6, got, tt.want)
		}
	}
	// ClientGroup is ClientNetwork with /32 and /64.
	a := netip.MustParseAddr("192.0.2.9")
	if middleware.ClientGroup(a) != middleware.ClientNetwork(a, 32, 64) {
		t.Error("ClientGroup differs from ClientNetwork(a, 32, 64)")
	}
}
