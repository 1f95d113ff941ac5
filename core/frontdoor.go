package core

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// A front door is what a listener does before the chain: the TLS
// handshake when the listener has TLS, then the protocol, told from the
// first byte the client sends (0x05: SOCKS5; an ASCII capital letter, the
// start of a method such as CONNECT or GET: HTTP). Anything else, a TLS
// ClientHello (0x16) on a listener without TLS included, is closed at once
// and counted.

// tlsRecordHandshake is the first byte of a TLS ClientHello.
const tlsRecordHandshake = 0x16

// listenerStats are one listener's counters, kept for the life of the
// Runtime (listeners change only with a restart).
type listenerStats struct {
	name string
	// chain is the named chain the listener serves through ("" the main
	// one); a change may not remove it while the listener runs.
	chain         string
	connections   atomic.Int64
	http          atomic.Int64 // connections that spoke HTTP
	tlsFailures   atomic.Int64
	badFirstByte  atomic.Int64
	tlsOnPlain    atomic.Int64
	badHTTP       atomic.Int64 // malformed requests, answered 400
	proxyAuthReqd atomic.Int64 // answered 407
}

// frontDoors holds every listener's counters and the rate limit of the
// TLS failure log.
type frontDoors struct {
	mu    sync.Mutex
	stats []*listenerStats
	// tlsGate lets one TLS failure line per source through per logEvery.
	tlsGate sourceGate
}

// statsFor returns the counters of the named listener, made on first use.
func (f *frontDoors) statsFor(name string) *listenerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ls := range f.stats {
		if ls.name == name {
			return ls
		}
	}
	ls := &listenerStats{name: name}
	f.stats = append(f.stats, ls)
	return ls
}

// serving registers a listener about to serve through chain.
func (f *frontDoors) serving(name, chain string) *listenerStats {
	ls := f.statsFor(name)
	f.mu.Lock()
	ls.chain = chain
	f.mu.Unlock()
	return ls
}

// checkChains refuses named chains that lack one a running listener
// serves through.
func (f *frontDoors) checkChains(chains map[string][]StageConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ls := range f.stats {
		if _, ok := chains[ls.chain]; ls.chain != "" && !ok {
			return fmt.Errorf("%w: chains.%s: listener %s serves through it (restart to remove it)", ErrChainInUse, ls.chain, ls.name)
		}
	}
	return nil
}

// stats lists every listener's counters as STATS lines,
// listener.<name>.<counter>, listeners in the order they started.
func (f *frontDoors) statsLines() []middleware.Stat {
	f.mu.Lock()
	ls := slices.Clone(f.stats)
	f.mu.Unlock()
	var out []middleware.Stat
	for _, l := range ls {
		p := "listener." + l.name + "."
		out = append(out,
			middleware.Stat{Key: p + "connections", Value: l.connections.Load()},
			middleware.Stat{Key: p + "http", Value: l.http.Load()},
			middleware.Stat{Key: p + "tls_handshake_failures", Value: l.tlsFailures.Load()},
			middleware.Stat{Key: p + "bad_first_byte", Value: l.badFirstByte.Load()},
			middleware.Stat{Key: p + "tls_on_plain_port", Value: l.tlsOnPlain.Load()},
			middleware.Stat{Key: p + "http_bad_requests", Value: l.badHTTP.Load()},
			middleware.Stat{Key: p + "http_auth_required", Value: l.proxyAuthReqd.Load()},
		)
	}
	return out
}

// listener is a serving listener: its specification and counters.
type listener struct {
	spec  ListenerSpec
	stats *listenerStats
}

// ServeListener accepts connections on ln as spec says (protocol, TLS,
// chain) until ctx is cancelled or ln is closed, like ServeSOCKS.
func (r *Runtime) ServeListener(ctx context.Context, ln net.Listener, spec ListenerSpec) error {
	if spec.Protocol == "" {
		spec.Protocol = ProtoSOCKS5
	}
	if spec.Chain != "" && r.snap.Load().handler(spec.Chain) == nil {
		ln.Close()
		return fmt.Errorf("%w: listener %s: no chain %q under chains", ErrConfig, spec.Name, spec.Chain)
	}
	// From here a change may not remove the chain (a change racing this
	// start that removes it leaves the listener refusing connections,
	// never serving them through another chain).
	l := &listener{spec: spec, stats: r.doors.serving(spec.Name, spec.Chain)}
	return r.serve(ctx, ln, l)
}

// open runs the front door on c: the TLS handshake, then the protocol
// from the first byte. It returns ctx (without the bytes read past a
// PROXY header once the conn reads them), the conn the chain is to serve
// (c, or a wrapper of it) and the protocol; an error means c is to be
// closed.
func (r *Runtime) open(ctx context.Context, c net.Conn, l *listener, s *middleware.Session, timeout time.Duration) (context.Context, net.Conn, middleware.Protocol, error) {
	spec := l.spec
	plainSOCKS := spec.Protocol == ProtoSOCKS5 && spec.TLS == nil
	if plainSOCKS {
		// Nothing to tell apart: the greeting parser refuses what is not
		// SOCKS (counted in serveConn), without a peek on the hot path.
		return ctx, c, middleware.ProtocolSOCKS5, nil
	}
	if err := c.SetDeadline(s.Start.Add(timeout)); err != nil {
		return ctx, nil, 0, err
	}
	if early := earlyFrom(ctx); len(early) > 0 {
		// Bytes read past a PROXY header come first, for TLS and the
		// protocol alike.
		c = &peekedConn{Conn: c, r: io.MultiReader(bytes.NewReader(early), c)}
		ctx = context.WithValue(ctx, earlyKey{}, []byte(nil))
	}
	if spec.TLS != nil {
		tc := tls.Server(c, spec.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			l.stats.tlsFailures.Add(1)
			if ok, unlogged := r.doors.tlsGate.allow(s.Client.Addr(), time.Now()); ok {
				s.Logger.Warn("TLS handshake failed (logged once a minute per source)", "listener", spec.Name, "error", err, "unlogged_since_last", unlogged)
			}
			return ctx, nil, 0, errors.Join(ErrTLSHandshake, err)
		}
		c = tc
	}
	first, c, err := peekFirst(c)
	if err != nil {
		return ctx, nil, 0, err
	}
	var proto middleware.Protocol
	switch {
	case first == socksVersion && spec.Protocol != ProtoHTTP:
		proto = middleware.ProtocolSOCKS5
	case first >= 'A' && first <= 'Z' && spec.Protocol != ProtoSOCKS5:
		proto = middleware.ProtocolHTTP
		l.stats.http.Add(1)
	case first == tlsRecordHandshake && spec.TLS == nil:
		l.stats.tlsOnPlain.Add(1)
		return ctx, nil, 0, ErrTLSOnPlainPort
	default:
		l.stats.badFirstByte.Add(1)
		return ctx, nil, 0, ErrFirstByte
	}
	return ctx, c, proto, nil
}

// peekFirst returns the first byte c will read, and a conn that still
// reads it: c itself when the kernel can peek (a TCP conn), else a wrapper.
func peekFirst(c net.Conn) (byte, net.Conn, error) {
	if b, ok, err := peekSocket(c); ok {
		return b, c, err
	}
	br := bufio.NewReaderSize(c, 16)
	b, err := br.Peek(1)
	if err != nil {
		return 0, nil, err
	}
	return b[0], &peekedConn{Conn: c, r: io.MultiReader(bytesReader(br), c)}, nil
}

// bytesReader returns the bytes br holds as a reader (never more, so the
// rest is read from the conn directly, without copying).
func bytesReader(br *bufio.Reader) io.Reader {
	return io.LimitReader(br, int64(br.Buffered()))
}

// peekedConn is a conn whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// CloseWrite half-closes the underlying conn when it can (the relay's
// half-close); a TLS conn sends close_notify.
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// countFrontDoorError counts a plain SOCKS listener's refusal of a first
// byte that is not SOCKS (the greeting parser's ErrVersion before any
// method was chosen).
func countFrontDoorError(l *listener, s *middleware.Session, err error) {
	if !errors.Is(err, ErrVersion) || s.AuthState != middleware.AuthNone {
		return
	}
	l.stats.badFirstByte.Add(1)
}
