package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// acceptBackoffMax caps the pause after a failed accept (EMFILE and the like).
const acceptBackoffMax = time.Second

// ServeSOCKS accepts SOCKS connections on ln until ctx is cancelled or ln
// fails for good, serving each through the live snapshot's chain. It closes
// ln, ends open connections when ctx is cancelled, and returns once every
// connection it started has ended.
func (r *Runtime) ServeSOCKS(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var backoff time.Duration
	var lastLog time.Time
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or a transient failure: pause instead
			// of spinning, and log at most once a second.
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			if time.Since(lastLog) >= time.Second {
				r.logger.Error("accept failed; backing off", "error", err, "backoff", backoff)
				lastLog = time.Now()
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.serveConn(ctx, c)
		}()
	}
}

// serveConn serves one accepted connection through the live snapshot.
func (r *Runtime) serveConn(parent context.Context, c net.Conn) {
	defer c.Close()
	id := r.nextID.Add(1)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// A cancelled session (server stopping, user deleted) closes its conn,
	// which ends any read or write in the chain.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r.sessions.add(id, cancel)
	defer r.sessions.remove(id)

	s := &middleware.Session{
		ID:     id,
		Start:  time.Now(),
		Client: addrPortOf(c.RemoteAddr()),
		Conn:   c,
		Dialer: r.dialer,
	}
	s.Logger = r.connLog.With("conn", id, "client", s.Client.String())
	defer func() {
		if p := recover(); p != nil {
			r.panics.Add(1)
			s.Logger.Error("panic while serving connection", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	snap := r.snap.Load()
	err := snap.Handler.ServeConn(ctx, s)
	if s.Logger.IsDebug() {
		s.Logger.Debug("connection closed", "user", s.User, "cmd", s.Command, "target", s.Target.String(),
			"reply", int(s.Reply), "up", s.Up.Load(), "down", s.Down.Load(), "duration", s.Duration(), "error", err)
	}
}
