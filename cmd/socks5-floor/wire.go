package main

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/socks5d/socks5d/middleware"
)

// The wire format of RFC 1928 and RFC 1929, as far as the floor speaks it.
// The methods and reply codes, and which reply a failed connect gets
// (middleware.ReplyFor), are the kit's, as socks5d's are.
const (
	socksVersion = 5
	authVersion  = 1
	cmdConnect   = 1
	atypIPv4     = 1
	atypIPv6     = 4

	methodPass = byte(middleware.MethodPassword)
	noMethod   = byte(middleware.MethodNoAcceptable)
)

var (
	// errMore: the message is not whole yet; read more.
	errMore     = errors.New("message incomplete")
	errVersion  = errors.New("not SOCKS5")
	errNoMethod = errors.New("user/password not offered")
	errAuth     = errors.New("wrong user or password")
	errCmd      = errors.New("command not supported")
	errAtyp     = errors.New("address type not supported")
)

// handshakeMax bounds a client's handshake bytes gathered at once: the
// largest greeting, login (3+255+255) and request, sent together, fit.
const handshakeMax = 1024

type credentials struct{ user, pass string }

func (c credentials) ok(user, pass []byte) bool {
	u := subtle.ConstantTimeCompare(user, []byte(c.user))
	p := subtle.ConstantTimeCompare(pass, []byte(c.pass))
	return u&p == 1
}

// greeting parses a greeting at the start of b: the bytes it takes, or
// errMore, errVersion, or errNoMethod (the caller answers noMethod).
func greeting(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, errMore
	}
	if b[0] != socksVersion {
		return 0, errVersion
	}
	n := 2 + int(b[1])
	if len(b) < n {
		return 0, errMore
	}
	for _, m := range b[2:n] {
		if m == methodPass {
			return n, nil
		}
	}
	return n, errNoMethod
}

// login parses an RFC 1929 request at the start of b and checks it: the
// bytes it takes, or errMore, errVersion, or errAuth.
func login(b []byte, c credentials) (int, error) {
	if len(b) < 2 {
		return 0, errMore
	}
	if b[0] != authVersion {
		return 0, errVersion
	}
	ul := int(b[1])
	if len(b) < 2+ul+1 {
		return 0, errMore
	}
	pl := int(b[2+ul])
	n := 3 + ul + pl
	if len(b) < n {
		return 0, errMore
	}
	if !c.ok(b[2:2+ul], b[3+ul:n]) {
		return n, errAuth
	}
	return n, nil
}

// request parses a CONNECT request at the start of b: the bytes it takes
// and the destination, or errMore, errVersion, errCmd or errAtyp (the
// caller replies replyCmd or replyAtyp).
func request(b []byte) (int, netip.AddrPort, error) {
	if len(b) < 5 {
		return 0, netip.AddrPort{}, errMore
	}
	if b[0] != socksVersion {
		return 0, netip.AddrPort{}, errVersion
	}
	if b[1] != cmdConnect {
		return 0, netip.AddrPort{}, errCmd
	}
	var alen int
	switch b[3] {
	case atypIPv4:
		alen = 4
	case atypIPv6:
		alen = 16
	default:
		return 0, netip.AddrPort{}, errAtyp
	}
	n := 4 + alen + 2
	if len(b) < n {
		return 0, netip.AddrPort{}, errMore
	}
	ip, _ := netip.AddrFromSlice(b[4 : 4+alen])
	return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[4+alen:n])), nil
}

// reply is a SOCKS5 reply with the bound address (IPv4 zeros if none).
func reply(code middleware.Reply, bound netip.AddrPort) []byte {
	b := []byte{socksVersion, byte(code), 0}
	a := bound.Addr().Unmap()
	switch {
	case a.Is6():
		b = append(b, atypIPv6)
		b = append(b, a.AsSlice()...)
	case a.Is4():
		b = append(b, atypIPv4)
		b = append(b, a.AsSlice()...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, bound.Port())
}

// zeroAP is the bound address of a failure's reply.
var zeroAP netip.AddrPort
