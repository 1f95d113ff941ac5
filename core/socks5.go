package core

import (
	"encoding/binary"
	"net/netip"

	"github.com/socks5d/socks5d/middleware"
)

// The SOCKS5 wire codec (RFC 1928, RFC 1929). Parsers work on a byte slice
// that holds what has been read so far: they return how many bytes the
// message takes, errShort when more bytes are needed, or a protocol error.
// They never allocate except for a domain name, which becomes a string.

const (
	socksVersion   = 0x05
	authVersion    = 0x01 // RFC 1929 subnegotiation version
	atypIPv4       = 0x01
	atypDomain     = 0x03
	atypIPv6       = 0x04
	authSuccess    = 0x00
	authFailure    = 0x01
	maxGreetingLen = 2 + 255
	maxAuthLen     = 3 + 255 + 255
	maxRequestLen  = 4 + 1 + 255 + 2
)

// greeting is the client's method selection message.
type greeting struct {
	methods []byte // aliases the input
}

// parseGreeting parses VER NMETHODS METHODS.
func parseGreeting(b []byte) (greeting, int, error) {
	if len(b) < 2 {
		return greeting{}, 0, errShort
	}
	if b[0] != socksVersion {
		return greeting{}, 0, ErrVersion
	}
	n := 2 + int(b[1])
	if b[1] == 0 {
		return greeting{}, 0, ErrNoMethods
	}
	if len(b) < n {
		return greeting{}, 0, errShort
	}
	return greeting{methods: b[2:n]}, n, nil
}

// offers reports whether the client offered method m.
func (g greeting) offers(m middleware.Method) bool {
	for _, x := range g.methods {
		if x == byte(m) {
			return true
		}
	}
	return false
}

// credentials is an RFC 1929 username/password request. The slices alias
// the input buffer.
type credentials struct {
	user, pass []byte
}

// parseCredentials parses VER ULEN UNAME PLEN PASSWD.
func parseCredentials(b []byte) (credentials, int, error) {
	if len(b) < 2 {
		return credentials{}, 0, errShort
	}
	if b[0] != authVersion {
		return credentials{}, 0, ErrAuthVersion
	}
	ulen := int(b[1])
	if len(b) < 2+ulen+1 {
		return credentials{}, 0, errShort
	}
	plen := int(b[2+ulen])
	n := 3 + ulen + plen
	if len(b) < n {
		return credentials{}, 0, errShort
	}
	return credentials{user: b[2 : 2+ulen], pass: b[3+ulen : n]}, n, nil
}

// request is a SOCKS request: VER CMD RSV ATYP DST.ADDR DST.PORT.
type request struct {
	cmd    middleware.Command
	target middleware.Target
}

// parseRequest parses a request. An unknown ATYP is ErrAddressType, after
// which nothing more can be parsed; the caller replies 0x08.
func parseRequest(b []byte) (request, int, error) {
	if len(b) < 5 {
		return request{}, 0, errShort
	}
	if b[0] != socksVersion {
		return request{}, 0, ErrVersion
	}
	a, err := parseAddr(b[3:])
	if err != nil {
		return request{}, 0, err
	}
	req := request{cmd: middleware.Command(b[1])}
	req.target.Addr, req.target.Port = a.ip, a.port
	if a.name != nil {
		req.target.Name = string(a.name)
	}
	return req, 3 + a.n, nil
}

// wireAddr is ATYP DST.ADDR DST.PORT as parsed: an IP or a name (which
// aliases the input), a port, and the octets it took.
type wireAddr struct {
	ip   netip.Addr
	name []byte
	port uint16
	n    int
}

// parseAddr parses ATYP DST.ADDR DST.PORT, the address form requests and
// UDP headers share. It returns errShort when b holds only part of it.
func parseAddr(b []byte) (wireAddr, error) {
	if len(b) < 2 {
		return wireAddr{}, errShort
	}
	var a wireAddr
	switch b[0] {
	case atypIPv4:
		a.n = 1 + 4 + 2
		if len(b) < a.n {
			return wireAddr{}, errShort
		}
		a.ip = netip.AddrFrom4([4]byte(b[1:5]))
	case atypIPv6:
		a.n = 1 + 16 + 2
		if len(b) < a.n {
			return wireAddr{}, errShort
		}
		a.ip = netip.AddrFrom16([16]byte(b[1:17]))
	case atypDomain:
		l := int(b[1])
		if l == 0 {
			return wireAddr{}, ErrEmptyDomain
		}
		a.n = 1 + 1 + l + 2
		if len(b) < a.n {
			return wireAddr{}, errShort
		}
		a.name = b[2 : 2+l]
	default:
		return wireAddr{}, ErrAddressType
	}
	a.port = binary.BigEndian.Uint16(b[a.n-2 : a.n])
	return a, nil
}

// appendAddr encodes ATYP DST.ADDR DST.PORT for a target.
func appendAddr(dst []byte, t middleware.Target) []byte {
	switch {
	case t.Name != "":
		dst = append(dst, atypDomain, byte(len(t.Name)))
		dst = append(dst, t.Name...)
	case t.Addr.Is4():
		a := t.Addr.As4()
		dst = append(dst, atypIPv4)
		dst = append(dst, a[:]...)
	case t.Addr.Is6():
		a := t.Addr.As16()
		dst = append(dst, atypIPv6)
		dst = append(dst, a[:]...)
	default:
		dst = append(dst, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(dst, t.Port)
}

// appendReply encodes VER REP RSV ATYP BND.ADDR BND.PORT. An IPv4-mapped
// IPv6 address (as a dual-stack socket reports an IPv4 peer) is sent as
// IPv4.
func appendReply(dst []byte, rep middleware.Reply, bound netip.AddrPort) []byte {
	dst = append(dst, socksVersion, byte(rep), 0x00)
	return appendAddr(dst, middleware.Target{Addr: bound.Addr().Unmap(), Port: bound.Port()})
}
