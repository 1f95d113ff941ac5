package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// UDP ASSOCIATE (RFC 1928 section 7).
//
// An association has two UDP sockets. The relay socket is the one the
// client sends to: it is bound on the IP the control connection arrived on
// (never the wildcard), on a port of socks.udp.ports, and accepts datagrams
// only from the client's IP and, once known, its port. The outbound socket
// sends to destinations from the address the kernel routes by (it is bound
// on the wildcard, any port) and accepts answers only from hosts the client
// has sent to. Each socket has one read loop (goroutine); the connection's
// own goroutine watches the control connection, whose end ends the
// association. An idle loop holds no buffer: it waits until its socket is
// readable and only then takes a pooled 64 KiB buffer.

const (
	// udpReserve is the room kept before an answer's payload for its header
	// (the longest with an address: IPv6).
	udpReserve = 4 + 16 + 2
	// udpBufSize holds the largest datagram behind the reserve.
	udpBufSize = udpReserve + 65536
	// maxUDPPeers bounds the hosts an association remembers sending to;
	// past it, an arbitrary one is forgotten.
	maxUDPPeers = 4096
	// maxUDPNames bounds an association's name cache.
	maxUDPNames = 256
	// udpNameTTL and udpNameFailTTL are how long a resolved name, and a
	// failed lookup, are kept.
	udpNameTTL     = 30 * time.Second
	udpNameFailTTL = 5 * time.Second
	// maxUDPReadErrors ends an association whose socket keeps failing.
	maxUDPReadErrors = 100
)

// udpPool holds the UDP relay's datagram buffers.
var udpPool = poolFor(udpBufSize)

// udpAssociate serves a UDP ASSOCIATE request to its end: it opens the
// relay, replies, relays datagrams until the control connection ends or
// the association is idle, and closes everything it opened.
func (t *terminal) udpAssociate(ctx context.Context, s *middleware.Session) error {
	set := t.settings.UDP
	fail := func(code middleware.Reply, err error) error {
		t.reply(s, code, netip.AddrPort{})
		return &middleware.ReplyError{Code: code, Err: err}
	}
	key := udpKey{user: s.User}
	if s.User == "" {
		key.ip = s.Client.Addr().Unmap()
	}
	if !t.rt.udp.acquire(key, set.MaxAssociations, set.PerUser) {
		return fail(middleware.ReplyNotAllowed, ErrUDPLimit)
	}
	defer t.rt.udp.release(key)

	local := addrPortOf(s.Conn.LocalAddr()).Addr().Unmap()
	if !local.IsValid() || local.IsUnspecified() {
		return fail(middleware.ReplyGeneralFailure, ErrNoRelayAddress)
	}
	relay, err := listenUDPRange(local, set.PortLow, set.PortHigh)
	if err != nil {
		return fail(middleware.ReplyGeneralFailure, err)
	}
	out, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		relay.Close()
		return fail(middleware.ReplyGeneralFailure, err)
	}
	bound := addrPortOf(relay.LocalAddr())
	bound = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	if set.Advertise.IsValid() {
		bound = netip.AddrPortFrom(set.Advertise, bound.Port())
	}
	s.Bound = bound

	actx, cancel := context.WithCancel(ctx)
	a := &association{
		t: t, s: s, ctx: actx, cancel: cancel,
		relay: relay, out: out,
		clientIP: s.Client.Addr().Unmap().WithZone(""),
		outV4:    addrPortOf(out.LocalAddr()).Addr().Is4(),
		idle:     set.IdleTimeout,
		peers:    map[netip.Addr]struct{}{},
	}
	// The request's DST.ADDR and DST.PORT name the client's source when it
	// knows it. Its port is trusted only when the address is unset or the
	// control connection's own: a client behind NAT names its private
	// address, and its port is rewritten too, so it is learnt from the
	// first datagram instead.
	if p := s.Target.Port; p != 0 {
		if ta := s.Target.Addr.Unmap(); s.Target.Name != "" || ta.IsUnspecified() || ta.WithZone("") == a.clientIP {
			a.client = netip.AddrPortFrom(a.clientIP, p)
		}
	}
	a.upClient = a.client
	s.Active.Store(time.Now().UnixNano())

	if err := s.Conn.SetDeadline(time.Time{}); err != nil {
		a.close(err)
		return err
	}
	if err := t.reply(s, middleware.ReplySucceeded, bound); err != nil {
		a.close(err)
		return err
	}
	if s.Logger.IsDebug() {
		s.Logger.Debug("UDP association open", "relay", addrPortOf(relay.LocalAddr()).String(), "reply", bound.String(), "outbound", addrPortOf(out.LocalAddr()).String())
	}
	a.wg.Add(2)
	go a.upLoop()
	go a.downLoop()

	werr := watchControl(s.Conn)
	if ctx.Err() != nil {
		werr = context.Cause(ctx)
	}
	a.close(werr)
	a.wg.Wait()
	return a.cause
}

// watchControl reads the control connection until it ends, discarding
// anything the client sends. A clean EOF is nil.
func watchControl(c net.Conn) error {
	var buf [64]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// listenUDPRange binds a UDP socket on ip, on a free port of lo-hi (any
// port when both are 0), starting at a random one.
func listenUDPRange(ip netip.Addr, lo, hi uint16) (*net.UDPConn, error) {
	if lo == 0 {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	}
	n := int(hi) - int(lo) + 1
	start := rand.IntN(n)
	var err error
	for i := range n {
		port := lo + uint16((start+i)%n)
		var c *net.UDPConn
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no free UDP port in %d-%d: %w", lo, hi, err)
}

// association is one UDP ASSOCIATE.
type association struct {
	t      *terminal
	s      *middleware.Session
	ctx    context.Context // ends with the association
	cancel context.CancelFunc
	relay  *net.UDPConn // client-facing
	out    *net.UDPConn // destination-facing
	// clientIP is the control connection's client IP, unmapped.
	clientIP netip.Addr
	// outV4 is set when the outbound socket is IPv4 only.
	outV4 bool
	idle  time.Duration
	wg    sync.WaitGroup

	mu sync.Mutex
	// client is the client's datagram source; its port is 0 until known.
	client netip.AddrPort
	// peers are the hosts the client has sent to, the only ones whose
	// answers are relayed.
	peers map[netip.Addr]struct{}

	// The up loop's own state.
	upClient netip.AddrPort // its copy of client
	lastPeer netip.Addr     // the last host added to peers
	names    map[string]*udpName

	once  sync.Once
	cause error
}

// udpName is a cached lookup.
type udpName struct {
	name    string
	addrs   []netip.Addr // nil: the lookup failed
	expires time.Time
}

// close ends the association once: cause is what ended it (nil for the
// control connection's EOF). Both sockets and the control connection are
// closed, which ends every loop.
func (a *association) close(cause error) {
	a.once.Do(func() {
		a.cause = cause
		a.cancel()
		a.relay.Close()
		a.out.Close()
		a.s.Conn.Close()
	})
}

// loop reads conn until the association ends, passing each datagram to
// handle in a pooled buffer of udpBufSize, read at offset off.
func (a *association) loop(conn *net.UDPConn, off int, handle func(buf []byte, n int, from netip.AddrPort)) {
	defer a.wg.Done()
	defer func() {
		// A panic here (a policy stage's, say) would otherwise end the
		// process: count it and end the association, as serveConn does.
		if p := recover(); p != nil {
			a.t.rt.panics.Add(1)
			a.s.Logger.Error("panic in a UDP relay loop", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			a.close(fmt.Errorf("core: panic in the UDP relay: %v", p))
		}
	}()
	var w udpWaiter
	w.init(conn)
	_ = conn.SetReadDeadline(time.Now().Add(a.idle))
	failures := 0
	for {
		err := w.wait()
		if err == nil {
			bp := udpPool.Get().(*[]byte)
			var n int
			var from netip.AddrPort
			n, from, err = conn.ReadFromUDPAddrPort((*bp)[off:])
			if err == nil {
				handle(*bp, n, from)
				failures = 0
			}
			udpPool.Put(bp)
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			last := time.Unix(0, a.s.Active.Load())
			if time.Since(last) >= a.idle {
				a.close(ErrUDPIdle)
				return
			}
			_ = conn.SetReadDeadline(last.Add(a.idle))
		case errors.Is(err, net.ErrClosed):
			a.close(nil)
			return
		default:
			// A transient error (an ICMP report): go on, unless it persists.
			if failures++; failures > maxUDPReadErrors {
				a.close(err)
				return
			}
		}
	}
}

func (a *association) upLoop()   { a.loop(a.relay, 0, a.fromClient) }
func (a *association) downLoop() { a.loop(a.out, udpReserve, a.toClient) }

// fromClient relays one datagram from the relay socket to its destination.
func (a *association) fromClient(buf []byte, n int, from netip.AddrPort) {
	u := &a.t.rt.udp
	b := buf[:n]
	src := from.Addr().Unmap().WithZone("")
	if src != a.clientIP || (a.upClient.Port() != 0 && from.Port() != a.upClient.Port()) {
		u.droppedForeign.Add(1)
		return
	}
	h, hl, err := parseUDPHeader(b)
	if err != nil {
		u.droppedOther.Add(1)
		return
	}
	if h.frag != 0 {
		u.droppedFrag.Add(1)
		return
	}
	if a.upClient.Port() == 0 {
		// The first datagram from the client's IP names its port.
		a.upClient = netip.AddrPortFrom(src, from.Port())
		a.mu.Lock()
		a.client = a.upClient
		a.mu.Unlock()
	}
	var dst netip.Addr
	var dest middleware.Target
	var resolved []netip.Addr
	if h.name != nil {
		// A name the policy refuses is never looked up.
		if len(a.t.policies) > 0 && !a.t.nameAllowed(a.s, middleware.CmdUDPAssociate, middleware.Target{Name: string(h.name), Port: h.port}) {
			u.droppedPolicy.Add(1)
			return
		}
		e := a.resolve(h.name)
		if e.addrs == nil {
			u.droppedOther.Add(1)
			return
		}
		dst = a.pick(e.addrs)
		if !dst.IsValid() {
			u.droppedOther.Add(1)
			return
		}
		dest, resolved = middleware.Target{Name: e.name, Port: h.port}, e.addrs
	} else {
		dst = h.addr.Unmap()
		dest = middleware.Target{Addr: h.addr, Port: h.port}
	}
	if len(a.t.policies) > 0 && !a.t.allowed(a.s, middleware.CmdUDPAssociate, dest, resolved) {
		u.droppedPolicy.Add(1)
		return
	}
	if dst != a.lastPeer {
		a.mu.Lock()
		if _, ok := a.peers[dst]; !ok {
			if len(a.peers) >= maxUDPPeers {
				for p := range a.peers {
					delete(a.peers, p)
					break
				}
			}
			a.peers[dst] = struct{}{}
		}
		a.mu.Unlock()
		a.lastPeer = dst
	}
	payload := b[hl:]
	if a.s.Pacer != nil && !a.s.Pacer.AllowBytes(true, len(payload)) {
		u.droppedRate.Add(1)
		return
	}
	if _, err := a.out.WriteToUDPAddrPort(payload, netip.AddrPortFrom(dst, h.port)); err != nil {
		u.droppedOther.Add(1)
		return
	}
	a.s.Up.Add(int64(len(payload)))
	a.s.Active.Store(time.Now().UnixNano())
	u.relayed.Add(1)
}

// toClient relays one answer, read at buf[udpReserve:udpReserve+n], to
// the client with a header naming its source.
func (a *association) toClient(buf []byte, n int, from netip.AddrPort) {
	u := &a.t.rt.udp
	src := from.Addr().Unmap().WithZone("")
	a.mu.Lock()
	_, known := a.peers[src]
	client := a.client
	a.mu.Unlock()
	if !known || client.Port() == 0 {
		u.droppedForeign.Add(1)
		return
	}
	if a.s.Pacer != nil && !a.s.Pacer.AllowBytes(false, n) {
		u.droppedRate.Add(1)
		return
	}
	off := udpReserve - udpHeaderLen(src)
	appendUDPHeader(buf[off:off], 0, middleware.Target{Addr: src, Port: from.Port()})
	if _, err := a.relay.WriteToUDPAddrPort(buf[off:udpReserve+n], client); err != nil {
		u.droppedOther.Add(1)
		return
	}
	a.s.Down.Add(int64(n))
	a.s.Active.Store(time.Now().UnixNano())
	u.relayed.Add(1)
}

// resolve looks a name up through the association's cache.
func (a *association) resolve(name []byte) *udpName {
	now := time.Now()
	if e := a.names[string(name)]; e != nil && now.Before(e.expires) {
		return e
	}
	e := &udpName{name: string(name)}
	if addrs, err := a.t.lookup(a.ctx, e.name); err == nil && len(addrs) > 0 {
		e.addrs, e.expires = addrs, now.Add(udpNameTTL)
	} else {
		e.expires = now.Add(udpNameFailTTL)
	}
	if a.names == nil {
		a.names = map[string]*udpName{}
	}
	if len(a.names) >= maxUDPNames {
		for k := range a.names {
			delete(a.names, k)
			break
		}
	}
	a.names[e.name] = e
	return e
}

// pick chooses the address to send to: the first the outbound socket can
// reach.
func (a *association) pick(addrs []netip.Addr) netip.Addr {
	for _, ad := range addrs {
		if !a.outV4 || ad.Is4() {
			return ad.WithZone("")
		}
	}
	return netip.Addr{}
}
