package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// acceptBackoffMax caps the pause after a failed accept (EMFILE and the
// like), so the server serves again soon after descriptors free up.
const acceptBackoffMax = 100 * time.Millisecond

// acceptLogEvery is the interval at which accept failures are logged.
const acceptLogEvery = 5 * time.Second

// ServeSOCKS accepts SOCKS connections on ln until ctx is cancelled or ln
// is closed, serving each through the live snapshot's chain. It closes ln
// and returns when it stops accepting; the connections it started go on
// until they end or Shutdown ends them.
func (r *Runtime) ServeSOCKS(ctx context.Context, ln net.Listener) error {
	return r.ServeListener(ctx, ln, ListenerSpec{Name: DefaultListener, Protocol: ProtoSOCKS5})
}

// serve is the accept loop of a listener.
func (r *Runtime) serve(ctx context.Context, ln net.Listener, l *listener) error {
	// Count the accept loop itself, so that Shutdown never waits from zero
	// while a connection is being added; a loop that starts once Shutdown
	// began does not serve.
	r.loopsMu.Lock()
	if r.stopped {
		r.loopsMu.Unlock()
		ln.Close()
		return nil
	}
	r.conns.Add(1)
	r.loopsMu.Unlock()
	defer r.conns.Done()
	stop := context.AfterFunc(ctx, func() {
		r.draining.Store(true) // before the loop stops accepting
		ln.Close()
	})
	defer stop()
	r.accepting.Add(1)
	defer r.accepting.Add(-1)
	var backoff time.Duration
	var lastLog time.Time
	failures := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or a transient failure: pause instead
			// of spinning, and log once per interval, not per attempt.
			failures++
			r.acceptErrors.Add(1)
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			if time.Since(lastLog) >= acceptLogEvery {
				r.logger.Error("accept failed; backing off", "error", err, "failures", failures, "backoff", backoff)
				lastLog, failures = time.Now(), 0
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		r.conns.Add(1)
		go func() {
			defer r.conns.Done()
			r.serveConn(r.base, c, l)
		}()
	}
}

// Shutdown waits for open connections to end until ctx is done, then
// closes the rest and waits for them. It returns how many it closed. Stop
// accepting first (cancel ServeSOCKS's context): Shutdown also waits for
// ServeSOCKS to return.
func (r *Runtime) Shutdown(ctx context.Context) int {
	r.draining.Store(true)
	r.loopsMu.Lock()
	r.stopped = true
	r.loopsMu.Unlock()
	done := make(chan struct{})
	go func() { r.conns.Wait(); close(done) }()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
	}
	n := r.sessions.Len()
	r.cancelBase(errShutdown)
	r.sessions.endAll(errShutdown)
	<-done
	return n
}

// serveConn serves one accepted connection through the live snapshot.
// Its goroutine holds this frame for the connection's whole life (an idle
// relay waits below it), so the frame is kept small: opening the session,
// its front door and its end are calls of their own.
func (r *Runtime) serveConn(parent context.Context, c net.Conn, l *listener) {
	s, ctx, snap, end := r.openSession(parent, c, l)
	defer end()
	if s == nil {
		return // refused before the chain
	}
	defer r.recoverConn(s)
	ctx, h := r.frontDoor(ctx, c, l, s, snap)
	if h == nil {
		return
	}
	r.connEnded(l, s, h.ServeConn(ctx, s))
}

// openSession registers a new session for c with its own context, and
// returns with it the live snapshot and the function that ends the
// session: out of the table, its context cancelled, c closed. A
// connection refused before the chain (a bad PROXY header) has no session
// (nil), only the function.
func (r *Runtime) openSession(parent context.Context, c net.Conn, l *listener) (*middleware.Session, context.Context, *Snapshot, func()) {
	id := r.nextID.Add(1)
	// A session is ended (server stopping, user deleted, killed) through
	// the session table, which cancels ctx and closes its conns; a killed
	// one is reset (see sessionTable.end).
	ctx, cancel := context.WithCancelCause(parent)
	l.stats.connections.Add(1)
	start := time.Now()
	snap := r.snap.Load()
	// The one place the client's address is decided: the socket's peer,
	// or, from a trusted load balancer, the PROXY header's source (the
	// balancer is kept as Via).
	client, via := addrPortOf(c.RemoteAddr()), netip.AddrPort{}
	if snap.Settings.trusts(client.Addr()) {
		// Not in the session table yet: a stop (Shutdown) ends the
		// header's read through ctx.
		stop := context.AfterFunc(ctx, func() { c.Close() })
		h, err := readProxyHeader(c, start.Add(snap.Settings.HandshakeTimeout))
		stop()
		if err != nil {
			r.proxy.refuse(r.connLog, client, err)
			return nil, nil, nil, func() {
				cancel(nil)
				c.Close()
			}
		}
		r.proxy.accepted.Add(1)
		if h.client.IsValid() { // else LOCAL: the balancer's own connection
			client, via = h.client, client
		}
		ctx = withEarly(ctx, h.early)
	}
	s := &middleware.Session{
		ID:       id,
		Start:    start,
		Client:   client,
		Via:      via,
		Conn:     c,
		Dialer:   r.dialer,
		Listener: l.spec.Name,
	}
	r.sessions.add(s, cancel, c)
	if ctx.Err() != nil { // the server stopped before the table had it
		_ = closeFor(context.Cause(ctx), c)
	}
	lg := &connLogger{Logger: r.connLog, id: id, client: s.Client, via: s.Via}
	if l.spec.Name != DefaultListener {
		lg.listener = l.spec.Name
	}
	s.Logger = lg
	return s, ctx, snap, func() {
		r.sessions.remove(id)
		cancel(nil)
		c.Close()
	}
}

// frontDoor opens the listener's front door (TLS, the protocol) and
// returns the context and the chain to serve the session through; a nil
// chain if the connection was refused.
func (r *Runtime) frontDoor(ctx context.Context, c net.Conn, l *listener, s *middleware.Session, snap *Snapshot) (context.Context, middleware.Handler) {
	ctx, conn, proto, err := r.open(ctx, c, l, s, snap.Settings.HandshakeTimeout)
	if err != nil {
		if s.Logger.IsDebug() {
			s.Logger.Debug("connection refused at the front door", "error", err)
		}
		return ctx, nil
	}
	s.Conn, s.Protocol = conn, proto
	h := snap.handler(l.spec.Chain)
	if h == nil { // its chain is gone: refuse rather than serve through another
		s.Logger.Error("listener's chain is missing; connection closed", "chain", l.spec.Chain)
		return ctx, nil
	}
	return ctx, h
}

// recoverConn, deferred by serveConn, logs a panic of the connection's
// chain instead of letting it take the server down.
func (r *Runtime) recoverConn(s *middleware.Session) {
	if p := recover(); p != nil {
		r.panics.Add(1)
		s.Logger.Error("panic while serving connection", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
}

// connEnded counts and logs a connection's end.
func (r *Runtime) connEnded(l *listener, s *middleware.Session, err error) {
	countFrontDoorError(l, s, err)
	if errors.Is(err, errRelayPanic) {
		r.panics.Add(1)
		s.Logger.Error("panic in the relay", "error", err)
	}
	if s.Logger.IsDebug() {
		s.Logger.Debug("connection closed", "user", s.User, "cmd", s.Command, "target", s.Target.String(),
			"reply", int(s.Reply), "up", s.Up.Load(), "down", s.Down.Load(), "duration", s.Duration(), "error", err)
	}
}
