package quota

import (
	"fmt"
	"math"
	"net"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// conn counts the bytes its user moves through the client connection, both
// ways, and stops them at the quota: a Read asks for no more than what is
// left, a Write writes no more than what is left. When the user reaches
// the quota, every open connection of the user is closed. During the
// handshake and for anonymous sessions it only passes bytes through.
type conn struct {
	net.Conn
	s   *middleware.Session
	st  *stage
	cur atomic.Pointer[binding]
}

// binding is the account a conn counts into, and the period generation it
// belongs to.
type binding struct {
	a   *account
	gen int64
}

var (
	_ net.Conn                  = (*conn)(nil)
	_ middleware.ReadThrough    = (*conn)(nil)
	_ middleware.ProgressWriter = (*conn)(nil)
)

// Inner implements middleware.ReadThrough: Read reads straight from the
// wrapped conn.
func (c *conn) Inner() net.Conn { return c.Conn }

// account returns the user's account in the current period, or nil before
// the reply to the request (the handshake) and for anonymous sessions. The
// terminal handler sets s.User and s.ReplySent before the relay starts, in
// the goroutine that does the handshake reads and writes, so reading them
// here is ordered after the writes. The reply itself (10 to 22 bytes) is
// counted: it is written after ReplySent is set.
func (c *conn) account() *account {
	if c.s.User == "" || !c.s.ReplySent || c.s.Reply != middleware.ReplySucceeded {
		return nil // the handshake, or a refusal (0x02 over quota) that must reach the client
	}
	u := c.st.usage
	u.roll(c.st.period)
	gen := u.gen.Load()
	if b := c.cur.Load(); b != nil && b.gen == gen {
		return b.a
	}
	a, gen := u.account(c.s.User)
	a.mu.Lock()
	a.conns[c] = struct{}{}
	a.mu.Unlock()
	if old := c.cur.Swap(&binding{a: a, gen: gen}); old != nil && old.a != a {
		old.a.mu.Lock()
		delete(old.a.conns, c)
		old.a.mu.Unlock()
	}
	return a
}

// left is what the user may still move, and the error to end with when
// nothing is left.
func (c *conn) left(a *account) (int64, error) {
	if c.st.limit == 0 {
		return math.MaxInt64, nil // counting only
	}
	n := c.st.limit - a.used()
	if n <= 0 {
		c.reached(a)
		return 0, fmt.Errorf("user %q: %w (%d bytes this period)", a.user, ErrQuotaReached, c.st.limit)
	}
	return n, nil
}

// Read reads at most what the user has left.
func (c *conn) Read(p []byte) (int, error) {
	a := c.account()
	if a == nil {
		return c.Conn.Read(p)
	}
	n, err := c.left(a)
	if err != nil {
		return 0, err
	}
	if int64(len(p)) > n {
		p = p[:n]
	}
	k, err := c.Conn.Read(p)
	if k > 0 {
		a.pending.Add(int64(k))
		if c.st.over(a.used()) {
			c.reachedOthers(a)
		}
	}
	return k, err
}

// Write writes at most what the user has left; a Write cut short returns
// an error wrapping ErrQuotaReached.
func (c *conn) Write(p []byte) (int, error) { return c.WriteProgress(p, nil) }

// WriteProgress implements middleware.ProgressWriter over a wrapped conn
// that paces its writes (ratelimit), so the counters follow the pieces.
func (c *conn) WriteProgress(p []byte, moved func(int)) (int, error) {
	a := c.account()
	if a == nil {
		return writeThrough(c.Conn, p, moved)
	}
	n, err := c.left(a)
	if err != nil {
		return 0, err
	}
	cut := int64(len(p)) > n
	if cut {
		p = p[:n]
	}
	k, err := writeThrough(c.Conn, p, func(k int) {
		a.pending.Add(int64(k))
		if moved != nil {
			moved(k)
		}
	})
	if err == nil && cut {
		_, err = c.left(a)
	}
	if c.st.over(a.used()) {
		c.reachedOthers(a)
	}
	return k, err
}

// writeThrough writes p to w, through WriteProgress when w paces, calling
// moved (when not nil) for what was written.
func writeThrough(w net.Conn, p []byte, moved func(int)) (int, error) {
	if pw, ok := w.(middleware.ProgressWriter); ok && moved != nil {
		return pw.WriteProgress(p, moved)
	}
	n, err := w.Write(p)
	if n > 0 && moved != nil {
		moved(n)
	}
	return n, err
}

// reached closes every open connection of the user, this one included.
func (c *conn) reached(a *account) {
	c.closeAll(a, nil)
}

// reachedOthers closes the user's other connections: this one still
// returns the bytes it moved, and its next Read or Write ends it.
func (c *conn) reachedOthers(a *account) {
	c.closeAll(a, c)
}

func (c *conn) closeAll(a *account, except *conn) {
	a.mu.Lock()
	conns := make([]*conn, 0, len(a.conns))
	for o := range a.conns {
		if o != except {
			conns = append(conns, o)
			delete(a.conns, o)
		}
	}
	first := !a.reached
	a.reached = true
	a.mu.Unlock()
	if first {
		c.st.log.Info("quota reached", "user", a.user, "limit", c.st.limit)
	}
	for _, o := range conns {
		c.st.usage.closed.Add(1)
		o.Conn.Close()
	}
}

// Close forgets the conn in its account and closes the client conn.
func (c *conn) Close() error {
	if b := c.cur.Load(); b != nil {
		b.a.mu.Lock()
		delete(b.a.conns, c)
		b.a.mu.Unlock()
	}
	return c.Conn.Close()
}
