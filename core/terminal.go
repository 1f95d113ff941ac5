package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// defaultIOSize is the relay buffer size when no stage sets one.
const defaultIOSize = 32 << 10

// terminal is the end of every chain: the only handler that speaks SOCKS.
// It runs the handshake, dials the destination, replies and relays.
type terminal struct {
	rt       *Runtime
	settings Settings
	// policies are the snapshot's destination policies, asked for what
	// does not go through the Dialer (BIND, UDP datagrams).
	policies []middleware.Policy
}

var _ middleware.Handler = (*terminal)(nil)

// ServeConn serves one connection to its end and records the facts on s.
func (t *terminal) ServeConn(ctx context.Context, s *middleware.Session) error {
	defer func() { s.End = time.Now() }()
	if s.Protocol == middleware.ProtocolHTTP {
		return t.serveHTTP(ctx, s)
	}
	// The connection's goroutine keeps this frame, and those of the
	// chain above it, while the relay idles, and the stack it grew to is
	// the stack it keeps: so the SOCKS handshake, whose calls
	// (authentication, the dial) go deep, runs on another goroutine, a
	// handshaker that goes on to the next connection's, and this
	// goroutine's stack stays at the depth of an idle relay.
	target, err := t.openAside(ctx, s)
	if err != nil || target == nil { // target nil: a UDP association, served to its end
		return err
	}
	defer target.Close()
	// A session's end (KILL, DEL, shutdown) closes target too.
	t.rt.sessions.setOutbound(ctx, s.ID, target)
	return t.relay(s, s.Conn, target, nil) // open sent the early data
}

// opening is one run of open on a handshaker (see handshakePool), and its
// result.
type opening struct {
	t        *terminal
	ctx      context.Context
	s        *middleware.Session
	target   net.Conn
	err      error
	panicked any
	done     chan struct{} // receives when run has returned; reused
}

var openingPool = sync.Pool{New: func() any { return &opening{done: make(chan struct{}, 1)} }}

// openAside runs open on another goroutine (one of the handshakers) and
// waits for it; a panic there is raised here, for serveConn to log.
func (t *terminal) openAside(ctx context.Context, s *middleware.Session) (net.Conn, error) {
	o := openingPool.Get().(*opening)
	o.t, o.ctx, o.s = t, ctx, s
	handshakers.run(o)
	<-o.done
	target, err, p := o.target, o.err, o.panicked
	*o = opening{done: o.done}
	openingPool.Put(o)
	if p != nil {
		panic(p)
	}
	return target, err
}

func (o *opening) run() {
	defer func() {
		o.panicked = recover()
		o.done <- struct{}{}
	}()
	o.target, o.err = o.t.open(o.ctx, o.s)
}

// open runs the SOCKS handshake under the handshake timeout and sends the
// client's early data on: it returns the outbound connection, ready to
// relay, or nil and the error (nil and nil after a UDP association).
func (t *terminal) open(ctx context.Context, s *middleware.Session) (net.Conn, error) {
	client := s.Conn
	if err := client.SetDeadline(t.handshakeDeadline(s)); err != nil {
		return nil, err
	}
	h := getHSReader(client)
	h.w = copy(h.buf[:], earlyFrom(ctx)) // what came past a PROXY header
	target, err := t.handshake(ctx, s, h)
	if err != nil || target == nil {
		h.release()
		return nil, err
	}
	early := h.buffered() // bytes the client sent past its request
	err = client.SetDeadline(time.Time{})
	if err == nil && len(early) > 0 {
		var n int
		n, err = target.Write(early)
		s.Up.Add(int64(n))
	}
	h.release()
	if err != nil {
		target.Close()
		return nil, err
	}
	return target, nil
}

// handshakeDeadline is when the handshake must be done: the handshake
// timeout after the connection was accepted, so that the time a front door
// took (TLS, reading the first byte) counts too.
func (t *terminal) handshakeDeadline(s *middleware.Session) time.Time {
	if s.Start.IsZero() {
		return time.Now().Add(t.settings.HandshakeTimeout)
	}
	return s.Start.Add(t.settings.HandshakeTimeout)
}

// relay sends target the bytes the client sent past its request (early),
// then relays both ways until the connection ends.
func (t *terminal) relay(s *middleware.Session, client, target net.Conn, early []byte) error {
	if len(early) > 0 {
		n, err := target.Write(early)
		s.Up.Add(int64(n))
		if err != nil {
			return err
		}
	}
	ioSize := s.IOSize
	if ioSize <= 0 {
		ioSize = defaultIOSize
	}
	return relay(s, client, target, ioSize, relayTimeouts{idle: t.settings.IdleTimeout, linger: t.settings.Linger})
}

// handshake runs greeting, authentication and request, dials and sends the
// reply. It returns the outbound connection on success.
func (t *terminal) handshake(ctx context.Context, s *middleware.Session, h *hsReader) (net.Conn, error) {
	client := s.Conn
	g, err := next(h, parseGreeting)
	if err != nil {
		if errors.Is(err, ErrVersion) && isProxyHeader(h.buffered()) {
			// A PROXY header where none is trusted (the client
			// address here is the socket's peer).
			err = fmt.Errorf("%w: %w", ErrProxyUntrusted, err)
			t.rt.proxy.refuse(t.rt.connLog, s.Client, err)
		}
		if errors.Is(err, ErrNoMethods) {
			// Nothing offered, so nothing acceptable: say so, then close.
			_, _ = client.Write([]byte{socksVersion, byte(middleware.MethodNoAcceptable)})
		}
		return nil, err
	}
	method := middleware.MethodNoAcceptable
	if s.Auth != nil {
		for _, m := range [...]middleware.Method{middleware.MethodPassword, middleware.MethodNoAuth} {
			if g.offers(m) && s.Auth.Accepts(m) {
				method = m
				break
			}
		}
	}
	if _, err := client.Write([]byte{socksVersion, byte(method)}); err != nil {
		return nil, err
	}
	switch method {
	case middleware.MethodNoAcceptable:
		return nil, ErrNoAcceptableMethod
	case middleware.MethodNoAuth:
		s.AuthState = middleware.AuthNoAuth
	case middleware.MethodPassword:
		if err := t.authenticate(ctx, s, h); err != nil {
			return nil, err
		}
	}

	req, err := next(h, parseRequest)
	if err != nil {
		if errors.Is(err, ErrAddressType) || errors.Is(err, ErrEmptyDomain) {
			t.reply(s, middleware.ReplyAddressUnsupported, netip.AddrPort{})
		}
		return nil, err
	}
	s.Command, s.Target = req.cmd, req.target
	t.rt.sessions.setRequest(s.ID, req.cmd, req.target)
	switch req.cmd {
	case middleware.CmdConnect, middleware.CmdBind, middleware.CmdUDPAssociate:
	default:
		t.reply(s, middleware.ReplyCommandUnsupported, netip.AddrPort{})
		return nil, &middleware.ReplyError{Code: middleware.ReplyCommandUnsupported}
	}
	if err := t.admit(ctx, s); err != nil {
		return nil, err
	}
	switch req.cmd {
	case middleware.CmdBind:
		return t.bind(ctx, s, h)
	case middleware.CmdUDPAssociate:
		return nil, t.udpAssociate(ctx, s)
	}

	target, err := t.dial(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := t.reply(s, middleware.ReplySucceeded, s.Bound); err != nil {
		target.Close()
		return nil, err
	}
	return target, nil
}

// dial opens the connection to s.Target through the Session's Dialer
// within the connect timeout and records the bound address. A failure is
// replied (its code) and returned as a *middleware.ReplyError.
func (t *terminal) dial(ctx context.Context, s *middleware.Session) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.settings.ConnectTimeout)
	target, err := s.Dialer.DialContext(dctx, "tcp", s.Target.String())
	cancel()
	if err != nil {
		// A stage's refusal passes through as it is; any other failure
		// gets the code ReplyFor maps it to.
		err = middleware.DialError(err)
		t.reply(s, middleware.ReplyFor(err), netip.AddrPort{})
		return nil, err
	}
	s.Bound = addrPortOf(target.LocalAddr())
	return target, nil
}

// admit asks the session's admissions about the request, in order; the
// first refusal is replied (its ReplyError's code, else 0x01) and returned
// as a *middleware.ReplyError.
func (t *terminal) admit(ctx context.Context, s *middleware.Session) error {
	for _, a := range s.Admissions {
		if err := a.Admit(ctx, s); err != nil {
			var re *middleware.ReplyError
			if !errors.As(err, &re) {
				re = &middleware.ReplyError{Code: middleware.ReplyGeneralFailure, Err: err}
				err = re
			}
			t.reply(s, re.Code, netip.AddrPort{})
			return err
		}
	}
	return nil
}

// authenticate runs the RFC 1929 subnegotiation.
func (t *terminal) authenticate(ctx context.Context, s *middleware.Session, h *hsReader) error {
	creds, err := next(h, parseCredentials)
	if err != nil {
		return err
	}
	if err := t.login(ctx, s, string(creds.user), string(creds.pass)); err != nil {
		_, _ = s.Conn.Write([]byte{authVersion, authFailure})
		return err
	}
	_, err = s.Conn.Write([]byte{authVersion, authSuccess})
	return err
}

// login checks a user name and password with the Session's authenticator
// (RFC 1929's, and HTTP's Proxy-Authorization: Basic) and records the
// identity on s. It returns ErrAuthFailed or ErrUserDeleted.
func (t *terminal) login(ctx context.Context, s *middleware.Session, user, password string) error {
	role, err := s.Auth.Authenticate(ctx, user, password)
	if err != nil {
		s.AuthState = middleware.AuthFailed
		s.Logger.Debug("authentication failed", "user", hclog.Quote(user))
		return ErrAuthFailed
	}
	s.User, s.Role, s.AuthState = user, role, middleware.AuthOK
	ext, _ := s.Auth.(middleware.ExternalUser)
	external := ext != nil && ext.External()
	// Register the user before checking it still exists: a concurrent
	// delete either sees this session in its sweep or is seen here. A
	// user from a directory is not in the table.
	t.rt.sessions.setUser(s.ID, user, external)
	if !external && !t.rt.snap.Load().Users.Has(user) {
		s.AuthState = middleware.AuthFailed
		return ErrUserDeleted
	}
	return nil
}

// reply sends a SOCKS reply (or, to an HTTP client, its HTTP status) and
// records it on the session.
func (t *terminal) reply(s *middleware.Session, code middleware.Reply, bound netip.AddrPort) error {
	if s.Protocol == middleware.ProtocolHTTP {
		return httpReply(s, code)
	}
	var buf [4 + 16 + 2]byte
	b := appendReply(buf[:0], code, bound)
	s.Reply, s.ReplySent = code, true
	_, err := s.Conn.Write(b)
	return err
}

// addrPortOf returns a net.Addr as an AddrPort (zero if it is not IP).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort()
	case *net.UDPAddr:
		return v.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
