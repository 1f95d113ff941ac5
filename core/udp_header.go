package core

import (
	"errors"
	"net/netip"

	"github.com/socks5d/socks5d/middleware"
)

// The UDP request header codec: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA.

// udpHeader is a parsed UDP request header. name aliases the datagram.
type udpHeader struct {
	frag byte
	addr netip.Addr // for ATYP IPv4 and IPv6
	name []byte     // for ATYP DOMAINNAME
	port uint16
}

// target returns the header's destination as a Target (a name becomes a
// string).
func (h udpHeader) target() middleware.Target {
	if h.name != nil {
		return middleware.Target{Name: string(h.name), Port: h.port}
	}
	return middleware.Target{Addr: h.addr, Port: h.port}
}

// parseUDPHeader parses a datagram's header and returns it with its length;
// the payload is b[n:]. RSV must be zero.
func parseUDPHeader(b []byte) (udpHeader, int, error) {
	if len(b) < 4 || b[0] != 0 || b[1] != 0 {
		return udpHeader{}, 0, ErrUDPHeader
	}
	a, err := parseAddr(b[3:])
	if errors.Is(err, errShort) {
		return udpHeader{}, 0, ErrUDPHeader
	}
	if err != nil {
		return udpHeader{}, 0, err
	}
	return udpHeader{frag: b[2], addr: a.ip, name: a.name, port: a.port}, 3 + a.n, nil
}

// appendUDPHeader encodes RSV RSV FRAG ATYP DST.ADDR DST.PORT for t.
func appendUDPHeader(dst []byte, frag byte, t middleware.Target) []byte {
	dst = append(dst, 0, 0, frag)
	return appendAddr(dst, t)
}

// udpHeaderLen is the length of the header appendUDPHeader writes for an
// address.
func udpHeaderLen(a netip.Addr) int {
	if a.Is4() {
		return 4 + 4 + 2
	}
	return 4 + 16 + 2
}
