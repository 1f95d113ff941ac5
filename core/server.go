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
	<-done
	return n
}

// serveConn serves one accepted connection through the live snapshot.
func (r *Runtime) serveConn(parent context.Context, c net.Conn, l *listener) {
	defer c.Close()
	id := r.nextID.Add(1)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// A cancelled session (server stopping, user deleted, killed) closes
	// its conn, which ends any read or write in the chain; a killed one is
	// reset (see closeFor).
	stop := context.AfterFunc(ctx, func() { _ = closeFor(context.Cause(ctx), c) })
	defer stop()
	l.stats.connections.Add(1)
	start := time.Now()
	snap := r.snap.Load()
	// The one place the client's address is decided: the socket's peer,
	// or, from a trusted load balancer, the PROXY header's source (the
	// balancer is kept as Via).
	client, via := addrPortOf(c.RemoteAddr()), netip.AddrPort{}
	if snap.Settings.trusts(client.Addr()) {
		h, err := readProxyHeader(c, start.Add(snap.Settings.HandshakeTimeout))
		if err != nil {
			r.proxy.refuse(r.connLog, client, err)
			return
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
	r.sessions.add(s, cancel)
	defer r.sessions.remove(id)
	lg := &connLogger{Logger: r.connLog, id: id, client: s.Client, via: s.Via}
	if l.spec.Name != DefaultListener {
		lg.listener = l.spec.Name
	}
	s.Logger = lg
	defer func() {
		if p := recover(); p != nil {
			r.panics.Add(1)
			s.Logger.Error("panic while serving connection", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	ctx, conn, proto, err := r.open(ctx, c, l, s, snap.Settings.HandshakeTimeout)
	if err != nil {
		if s.Logger.IsDebug() {
			s.Logger.Debug("connection refused at the front door", "error", err)
		}
		return
	}
	s.Conn, s.Protocol = conn, proto
	h := snap.handler(l.spec.Chain)
	if h == nil { // its chain is gone: refuse rather than serve through another
		s.Logger.Error("listener's chain is missing; connection closed", "chain", l.spec.Chain)
		return
	}
	err = h.ServeConn(ctx, s)
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
