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

// appendGreeting encodes a greeting (used by tests and fuzzing).
func appendGreeting(dst []byte, methods ...byte) []byte {
	dst = append(dst, socksVersion, byte(len(methods)))
	return append(dst, methods...)
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

// appendCredentials encodes an RFC 1929 request; user and pass must be at
// most 255 octets.
func appendCredentials(dst []byte, user, pass string) []byte {
	dst = append(dst, authVersion, byte(len(user)))
	dst = append(dst, user...)
	dst = append(dst, byte(len(pass)))
	return append(dst, pass...)
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
	req := request{cmd: middleware.Command(b[1])}
	var n int
	switch b[3] {
	case atypIPv4:
		n = 4 + 4 + 2
		if len(b) < n {
			return request{}, 0, errShort
		}
		req.target.Addr = netip.AddrFrom4([4]byte(b[4:8]))
	case atypIPv6:
		n = 4 + 16 + 2
		if len(b) < n {
			return request{}, 0, errShort
		}
		req.target.Addr = netip.AddrFrom16([16]byte(b[4:20]))
	case atypDomain:
		l := int(b[4])
		if l == 0 {
			return request{}, 0, ErrEmptyDomain
		}
		n = 4 + 1 + l + 2
		if len(b) < n {
			return request{}, 0, errShort
		}
		req.target.Name = string(b[5 : 5+l])
	default:
		return request{}, 0, ErrAddressType
	}
	req.target.Port = binary.BigEndian.Uint16(b[n-2 : n])
	return req, n, nil
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

// appendRequest encodes a request (used by tests and fuzzing).
func appendRequest(dst []byte, cmd middleware.Command, t middleware.Target) []byte {
	dst = append(dst, socksVersion, byte(cmd), 0x00)
	return appendAddr(dst, t)
}

// appendReply encodes VER REP RSV ATYP BND.ADDR BND.PORT. An IPv4-mapped
// IPv6 address (as a dual-stack socket reports an IPv4 peer) is sent as
// IPv4.
func appendReply(dst []byte, rep middleware.Reply, bound netip.AddrPort) []byte {
	dst = append(dst, socksVersion, byte(rep), 0x00)
	return appendAddr(dst, middleware.Target{Addr: bound.Addr().Unmap(), Port: bound.Port()})
}
