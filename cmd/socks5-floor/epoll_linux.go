package main

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// epollServer is the epoll engine: one loop per listening socket, the
// sockets sharing the address with SO_REUSEPORT, so the kernel spreads
// the connections. A connection stays on its loop's thread for its life.
type epollServer struct {
	addr  netip.AddrPort
	loops []*loop
	wg    sync.WaitGroup
	once  sync.Once
}

func listenEpoll(addr string, n int, c credentials) (*epollServer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	s := &epollServer{addr: ap}
	for range max(n, 1) {
		l, err := newLoop(s.addr, c)
		if err != nil {
			for _, l := range s.loops {
				l.closeAll()
			}
			return nil, err
		}
		s.addr = l.addr // the port the first one got, when asked for 0
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		s.wg.Go(l.run)
	}
	return s, nil
}

// Addr is the address the loops listen on.
func (s *epollServer) Addr() netip.AddrPort { return s.addr }

// Close stops every loop and closes its connections.
func (s *epollServer) Close() {
	s.once.Do(func() {
		one := [8]byte{1}
		for _, l := range s.loops {
			_, _ = syscall.Write(l.wake, one[:])
		}
		s.wg.Wait()
	})
}

// Connection states.
const (
	stGreeting   = iota // client: until its greeting is whole
	stLogin             // client: its RFC 1929 request
	stRequest           // client: its CONNECT request
	stWaiting           // client: while its target connects
	stConnecting        // target: until connect(2) completes
	stRelay             // both
	stClosed
)

// econn is one socket of a loop.
type econn struct {
	fd int
	// gen tells this socket's events from those of an earlier one with
	// the same descriptor, closed earlier in the same batch of events.
	gen   int32
	state uint8
	peer  *econn
	// in: handshake bytes not parsed yet (a client's, before the relay).
	in []byte
	// out: bytes from peer not yet written to fd. While there are some,
	// fd waits to be writable and peer is not read (backpressure).
	out []byte
	// eof: fd has read EOF; shut: fd's writing side is shut down.
	eof, shut bool
	// events is fd's epoll interest while registered (see interest).
	events     uint32
	registered bool
}

type loop struct {
	addr         netip.AddrPort
	ep, ln, wake int
	creds        credentials
	conns        []*econn // by fd
	gen          int32    // the last econn.gen given
	buf          []byte
	events       []syscall.EpollEvent
	// acceptAt: accept ran out of descriptors, and the listener is out
	// of the set until then (zero: it is in).
	acceptAt time.Time
}

// acceptPause is how long a loop out of descriptors waits before it tries
// to accept again, instead of spinning on a listener that stays readable.
const acceptPause = 100 * time.Millisecond

func newLoop(ap netip.AddrPort, c credentials) (*loop, error) {
	l := &loop{ep: -1, ln: -1, wake: -1, creds: c, buf: make([]byte, 64<<10), events: make([]syscall.EpollEvent, 256)}
	fail := func(what string, err error) (*loop, error) {
		l.closeAll()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var err error
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return fail("epoll_create1", err)
	}
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return fail("eventfd", errno)
	}
	l.wake = int(r)
	if l.ln, err = socketFor(ap.Addr()); err != nil {
		return fail("socket", err)
	}
	_ = syscall.SetsockoptInt(l.ln, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.SetsockoptInt(l.ln, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	if err := syscall.Bind(l.ln, sockaddr(ap)); err != nil {
		return fail("bind", err)
	}
	if err := syscall.Listen(l.ln, syscall.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	sa, err := syscall.Getsockname(l.ln)
	if err != nil {
		return fail("getsockname", err)
	}
	l.addr = addrPort(sa)
	for _, fd := range []int{l.wake, l.ln} {
		if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fail("epoll_ctl", err)
		}
	}
	return l, nil
}

// soReusePort is SO_REUSEPORT, which package syscall does not name.
const soReusePort = 0xf

func socketFor(a netip.Addr) (int, error) {
	family := syscall.AF_INET
	if a.Unmap().Is6() {
		family = syscall.AF_INET6
	}
	return syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
}

func sockaddr(ap netip.AddrPort) syscall.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

func addrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch v := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(v.Addr), uint16(v.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(v.Addr), uint16(v.Port))
	}
	return netip.AddrPort{}
}

// closeAll closes the loop's sockets and descriptors.
func (l *loop) closeAll() {
	for _, c := range l.conns {
		if c != nil && c.state != stClosed {
			l.closeOne(c)
		}
	}
	for _, fd := range []int{l.ln, l.wake, l.ep} {
		if fd >= 0 {
			_ = syscall.Close(fd)
		}
	}
}

// run waits for events and handles them until Close wakes it.
func (l *loop) run() {
	runtime.LockOSThread()
	defer l.closeAll()
	for {
		timeout := -1
		if !l.acceptAt.IsZero() {
			timeout = int(max(time.Until(l.acceptAt), time.Millisecond) / time.Millisecond)
		}
		n, err := syscall.EpollWait(l.ep, l.events, timeout)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if !l.acceptAt.IsZero() && !time.Now().Before(l.acceptAt) {
			l.acceptAt = time.Time{}
			if syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, l.ln, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.ln)}) != nil {
				l.acceptAt = time.Now().Add(acceptPause) // try again then
			}
		}
		for _, ev := range l.events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.wake:
				return
			case l.ln:
				l.accept()
			default:
				if fd < len(l.conns) && l.conns[fd] != nil && l.conns[fd].gen == ev.Pad {
					l.handle(l.conns[fd], ev.Events)
				}
			}
		}
	}
}

// accept takes what the listening socket has queued (at most 64 a turn).
func (l *loop) accept() {
	for range 64 {
		fd, _, err := syscall.Accept4(l.ln, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err == syscall.EMFILE || err == syscall.ENFILE {
			// The connection stays queued, and the listener readable.
			if syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, l.ln, nil) == nil {
				l.acceptAt = time.Now().Add(acceptPause)
			}
			return
		}
		if err != nil {
			return
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c := &econn{fd: fd, state: stGreeting}
		l.track(c)
		l.interest(c, syscall.EPOLLIN)
	}
}

func (l *loop) track(c *econn) {
	l.gen++
	c.gen = l.gen
	if c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*econn, c.fd+1-len(l.conns))...)
	}
	l.conns[c.fd] = c
}

// interest sets c's epoll interest to ev. A socket that waits for
// nothing stays in the set (a reset is still reported) unless its writing
// side is shut: then a hang-up, reported whatever the interest, can come
// while its reading is paused, so it leaves the set until it waits for
// something again.
func (l *loop) interest(c *econn, ev uint32) {
	leave := ev == 0 && c.shut
	if c.state == stClosed || (!c.registered && ev == 0) || (c.registered && c.events == ev && !leave) {
		return
	}
	var err error
	switch {
	case leave:
		err = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
	case c.registered:
		err = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: ev, Fd: int32(c.fd), Pad: c.gen})
	default:
		err = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: ev, Fd: int32(c.fd), Pad: c.gen})
	}
	if err != nil {
		l.closePair(c)
		return
	}
	c.registered, c.events = !leave, ev
}

const (
	evIn  = syscall.EPOLLIN
	evOut = syscall.EPOLLOUT
)

func (l *loop) handle(c *econn, ev uint32) {
	switch c.state {
	case stGreeting, stLogin, stRequest:
		l.handshake(c)
	case stConnecting:
		l.connected(c)
	case stRelay:
		if ev&syscall.EPOLLERR != 0 {
			l.closePair(c)
			return
		}
		if ev&evOut != 0 && len(c.out) > 0 {
			l.flush(c)
			if c.state == stClosed {
				return
			}
		}
		// A hang-up with no error: the rest, then EOF, is to be read.
		if ev&(evIn|syscall.EPOLLHUP) != 0 && !c.eof && len(c.peer.out) == 0 {
			l.relay(c)
		}
	case stWaiting: // the client, while its target connects: only a reset
		if ev&syscall.EPOLLERR != 0 {
			l.closePair(c)
		}
	}
}

// handshake reads what the client sent and answers each whole message.
func (l *loop) handshake(c *econn) {
	// At most what the handshake may hold: early data past the request
	// stays in the socket for the relay.
	n, err := syscall.Read(c.fd, l.buf[:handshakeMax-len(c.in)])
	if err == syscall.EAGAIN {
		return
	}
	if n <= 0 {
		l.closePair(c)
		return
	}
	c.in = append(c.in, l.buf[:n]...)
	for {
		var n int
		var err error
		switch c.state {
		case stGreeting:
			if n, err = greeting(c.in); err == nil {
				err = l.say(c, socksVersion, methodPass)
				c.state = stLogin
			} else if err == errNoMethod {
				_ = l.say(c, socksVersion, noMethod)
			}
		case stLogin:
			if n, err = login(c.in, l.creds); err == nil {
				err = l.say(c, authVersion, 0)
				c.state = stRequest
			} else if err == errAuth {
				_ = l.say(c, authVersion, 1)
			}
		case stRequest:
			var dest netip.AddrPort
			if n, dest, err = request(c.in); err == nil {
				l.dial(c, dest, c.in[n:])
				return
			}
			switch err {
			case errCmd:
				_ = l.say(c, reply(middleware.ReplyCommandUnsupported, zeroAP)...)
			case errAtyp:
				_ = l.say(c, reply(middleware.ReplyAddressUnsupported, zeroAP)...)
			}
		}
		if err == errMore && len(c.in) < handshakeMax {
			return
		}
		if err != nil {
			l.closePair(c)
			return
		}
		c.in = c.in[:copy(c.in, c.in[n:])]
	}
}

// say writes a handshake message, whole or not at all.
func (l *loop) say(c *econn, b ...byte) error {
	n, err := syscall.Write(c.fd, b)
	if err == nil && n < len(b) {
		err = errors.New("short write")
	}
	return err
}

// dial starts connecting to dest; the client waits, unread, until it is
// done. early is what the client sent past its request.
func (l *loop) dial(c *econn, dest netip.AddrPort, early []byte) {
	fd, err := socketFor(dest.Addr())
	if err == nil {
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		err = syscall.Connect(fd, sockaddr(dest))
		if err == syscall.EINPROGRESS {
			err = nil
		}
		if err != nil {
			_ = syscall.Close(fd)
		}
	}
	if err != nil {
		_ = l.say(c, reply(middleware.ReplyFor(err), zeroAP)...)
		l.closePair(c)
		return
	}
	t := &econn{fd: fd, state: stConnecting, peer: c}
	if len(early) > 0 {
		t.out = append([]byte(nil), early...)
	}
	c.peer, c.state, c.in = t, stWaiting, nil
	l.track(t)
	l.interest(c, 0)
	l.interest(t, evOut)
}

// connected answers the client once its target's connect has completed.
func (l *loop) connected(t *econn) {
	c := t.peer
	code := middleware.ReplySucceeded
	var bound netip.AddrPort
	if e, err := syscall.GetsockoptInt(t.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil {
		code = middleware.ReplyGeneralFailure
	} else if e != 0 {
		code = middleware.ReplyFor(syscall.Errno(e))
	} else if sa, err := syscall.Getsockname(t.fd); err == nil {
		bound = addrPort(sa)
	}
	if err := l.say(c, reply(code, bound)...); err != nil || code != middleware.ReplySucceeded {
		l.closePair(c)
		return
	}
	t.state, c.state = stRelay, stRelay
	l.settle(c)
	if len(t.out) > 0 {
		l.flush(t)
	}
}

// relay moves what c has to its peer; what the peer cannot take now waits
// in peer.out, and c is not read until it has gone.
func (l *loop) relay(c *econn) {
	p := c.peer
	n, err := syscall.Read(c.fd, l.buf)
	switch {
	case n > 0:
		w, werr := syscall.Write(p.fd, l.buf[:n])
		if werr == syscall.EAGAIN {
			w, werr = 0, nil
		}
		if werr != nil {
			l.closePair(c)
			return
		}
		if w < n {
			p.out = append(p.out[:0], l.buf[w:n]...)
			l.settle(c)
		}
	case err == syscall.EAGAIN:
	case err != nil:
		l.closePair(c)
	default: // EOF: pass it on once what c sent has gone
		c.eof = true
		l.settle(c)
	}
}

// flush writes c.out.
func (l *loop) flush(c *econn) {
	n, err := syscall.Write(c.fd, c.out)
	if err == syscall.EAGAIN {
		return
	}
	if err != nil {
		l.closePair(c)
		return
	}
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
		l.settle(c)
	}
}

// settle brings c and its peer up to date after a change: an EOF read and
// its data gone is passed on as a half-close; a socket done both ways is
// closed; each remaining one waits for what it can do next.
func (l *loop) settle(c *econn) {
	for _, x := range [2]*econn{c, c.peer} {
		y := x.peer
		if y.eof && len(x.out) == 0 && !x.shut && x.state != stClosed {
			_ = syscall.Shutdown(x.fd, syscall.SHUT_WR)
			x.shut = true
		}
	}
	for _, x := range [2]*econn{c, c.peer} {
		if x.eof && x.shut && x.state != stClosed {
			l.closeOne(x)
		}
	}
	if c.state == stClosed && c.peer.state == stClosed {
		return
	}
	for _, x := range [2]*econn{c, c.peer} {
		if x.state == stClosed {
			continue
		}
		var ev uint32
		if !x.eof && len(x.peer.out) == 0 {
			ev |= evIn
		}
		if len(x.out) > 0 {
			ev |= evOut
		}
		l.interest(x, ev)
	}
}

// closePair closes c and its peer.
func (l *loop) closePair(c *econn) {
	l.closeOne(c)
	if c.peer != nil {
		l.closeOne(c.peer)
	}
}

func (l *loop) closeOne(c *econn) {
	if c.state == stClosed {
		return
	}
	c.state = stClosed
	if l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	_ = syscall.Close(c.fd)
}
