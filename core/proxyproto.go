package core

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pires/go-proxyproto"

	"github.com/socks5d/socks5d/middleware"
)

// The PROXY protocol (HAProxy's, versions 1 and 2) in front of the SOCKS
// listener. A connection from a trusted balancer must open with a header;
// the header's source address becomes the session's Client, the one place
// every stage, SESSIONS, LOGS, the connection log, metrics, bans and
// limits read the client from, and the balancer's address is kept beside
// it as Via. The header is parsed by github.com/pires/go-proxyproto.

// ProxyProtocolConfig is socks.proxy_protocol.
type ProxyProtocolConfig struct {
	// Trusted lists the load balancers, as CIDRs or single addresses,
	// whose connections must start with a PROXY header. Empty: the PROXY
	// protocol is off, and a header from anyone is refused.
	Trusted []string `koanf:"trusted"`
}

// validate checks socks.proxy_protocol.
func (c ProxyProtocolConfig) validate() error {
	for i, v := range c.Trusted {
		if _, err := parseTrusted(v); err != nil {
			return keyError(fmt.Sprintf("socks.proxy_protocol.trusted[%d]", i), "%w", err)
		}
	}
	return nil
}

// parseTrusted reads one trusted source: a CIDR or a single IP address,
// IPv4-mapped IPv6 read as IPv4.
func parseTrusted(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address such as 10.0.0.1", v)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address such as 10.0.0.1", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// proxyTrustedOf converts a validated socks.proxy_protocol.trusted.
func proxyTrustedOf(c ProxyProtocolConfig) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range c.Trusted {
		if p, err := parseTrusted(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// trusts reports whether a connection from a must carry a PROXY header.
func (s *Settings) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.ProxyTrusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxyBufSize is the buffer the header is read through: a v1 header
// (at most 107 octets) must fit whole, a v2 one is read through it. What
// the client sent past the header (at most this much) is handed to the
// handshake, which reads through a larger buffer (hsBufSize).
const proxyBufSize = 256

var proxyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, proxyBufSize) }}

// proxyHeader is what a trusted connection's header said.
type proxyHeader struct {
	// client is the header's source address; zero for a LOCAL header
	// (the balancer's own connection, a health check).
	client netip.AddrPort
	// early holds the bytes read past the header: the start of the
	// SOCKS handshake.
	early []byte
}

// readProxyHeader reads the PROXY header that must open c, by deadline.
// Errors wrap ErrProxyMissing (the connection does not start with a
// header; io.EOF too when it closed before sending anything) or
// ErrProxyInvalid (a malformed, truncated or slow header, or one whose
// source is not an IP address).
func readProxyHeader(c net.Conn, deadline time.Time) (proxyHeader, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return proxyHeader{}, err
	}
	br := proxyReaders.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() { br.Reset(nil); proxyReaders.Put(br) }()
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if br.Buffered() == 0 {
			return proxyHeader{}, fmt.Errorf("%w: closed before sending anything: %w", ErrProxyMissing, errEmptyConn)
		}
		return proxyHeader{}, ErrProxyMissing
	case errors.Is(err, os.ErrDeadlineExceeded):
		return proxyHeader{}, fmt.Errorf("%w: no complete header within socks.handshake_timeout: %w", ErrProxyInvalid, err)
	case err != nil:
		return proxyHeader{}, fmt.Errorf("%w: %w", ErrProxyInvalid, err)
	}
	var out proxyHeader
	if !h.Command.IsLocal() {
		ap := addrPortOf(h.SourceAddr)
		if !ap.IsValid() || h.SourceAddr == nil {
			return proxyHeader{}, fmt.Errorf("%w: the source is not an IP address (%v)", ErrProxyInvalid, h.TransportProtocol)
		}
		out.client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		out.early = bytes.Clone(b)
	}
	return out, nil
}

// errEmptyConn marks a trusted connection closed before its first byte:
// a balancer's plain TCP health check, not worth a warning.
var errEmptyConn = errors.New("core: empty connection")

// isProxyHeader reports whether b, the first bytes a client sent, start
// with a PROXY protocol signature (v1 or v2), as the library tells them.
func isProxyHeader(b []byte) bool {
	_, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(b)))
	return !errors.Is(err, proxyproto.ErrNoProxyProtocol)
}

// earlyKey is the context key of the bytes read past a PROXY header,
// which the terminal's handshake reads first.
type earlyKey struct{}

func withEarly(ctx context.Context, b []byte) context.Context {
	if len(b) == 0 {
		return ctx
	}
	return context.WithValue(ctx, earlyKey{}, b)
}

func earlyFrom(ctx context.Context) []byte {
	b, _ := ctx.Value(earlyKey{}).([]byte)
	return b
}

// proxyState counts PROXY protocol outcomes and paces their log lines.
type proxyState struct {
	accepted atomic.Int64 // headers accepted from trusted sources
	refused  atomic.Int64 // headers from sources not trusted
	missing  atomic.Int64 // trusted sources that sent no header
	invalid  atomic.Int64 // malformed, truncated or slow headers
	gate     sourceGate
}

// stats appends the counters to out. STATS shows them while the PROXY
// protocol is on, or once a header came anyway (seen).
func (p *proxyState) stats(out []middleware.Stat) []middleware.Stat {
	return append(out,
		middleware.Stat{Key: "proxy_protocol_accepted", Value: p.accepted.Load()},
		middleware.Stat{Key: "proxy_protocol_refused", Value: p.refused.Load()},
		middleware.Stat{Key: "proxy_protocol_missing", Value: p.missing.Load()},
		middleware.Stat{Key: "proxy_protocol_invalid", Value: p.invalid.Load()},
	)
}

// seen reports whether any PROXY protocol header, or connection from a
// trusted source, was ever counted.
func (p *proxyState) seen() bool {
	return p.accepted.Load()+p.refused.Load()+p.missing.Load()+p.invalid.Load() > 0
}

// refuse counts a refused connection from source and logs it, at most
// once per source per proxyLogEvery (an empty connection, a health
// check, only at DEBUG).
func (p *proxyState) refuse(log hclog.Logger, source netip.AddrPort, err error) {
	var msg string
	switch {
	case errors.Is(err, ErrProxyUntrusted):
		p.refused.Add(1)
		msg = "PROXY protocol header from a source not in socks.proxy_protocol.trusted; closed"
	case errors.Is(err, ErrProxyMissing):
		p.missing.Add(1)
		msg = "trusted source sent no PROXY protocol header; closed"
		if errors.Is(err, errEmptyConn) {
			log.Debug(msg, "source", source.String(), "error", err)
			return
		}
	default:
		p.invalid.Add(1)
		msg = "bad PROXY protocol header; closed"
	}
	if ok, unlogged := p.gate.allow(source.Addr(), time.Now()); ok {
		log.Warn(msg, "source", source.String(), "error", err, "unlogged_since_last", unlogged)
	}
}
