package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/socks5d/socks5d/middleware"
)

// conn limits the bytes read from the client and the bytes written to it.
//
// Reads are capped and writes split in pieces of what the tightest limit in
// force lets through in pieceTime (at least minPiece bytes, at most chunk,
// the burst), so no WaitN asks for more than a limiter's burst and, at a
// low rate, bytes move (and are counted, see WriteProgress) a piece at a
// time rather than a relay buffer at a time. A wait ends early with an
// error wrapping ErrWait when ctx is cancelled or the conn is closed.
type conn struct {
	net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	s      *middleware.Session
	chunk  int

	// read and write are the per-connection limiters, nil when unlimited.
	read, write *rate.Limiter
	// users is set when there is a per-user limit; user is the session's
	// pair, resolved on the first Read or Write after the terminal handler
	// has set s.User. The terminal handler sets s.User in the goroutine
	// that does the handshake reads and before it starts the relay, so
	// reading it here is ordered after the write.
	users *users
	user  atomic.Pointer[pair]
}

var (
	_ net.Conn                  = (*conn)(nil)
	_ middleware.ReadThrough    = (*conn)(nil)
	_ middleware.Pacer          = (*conn)(nil)
	_ middleware.ProgressWriter = (*conn)(nil)
)

const (
	// pieceTime is how long a piece takes at the tightest limit in force:
	// how often the session's counters move during a paced transfer.
	pieceTime = 100 * time.Millisecond
	// minPiece is the smallest piece, so that a very low rate does not
	// cost a system call per few bytes.
	minPiece = 512
)

// piece returns the largest read or write to make next: pieceTime's worth
// of the tightest of own and the user's limiter, within minPiece..chunk.
func (c *conn) piece(own *rate.Limiter, userSide func(*pair) *rate.Limiter) int {
	limit := rate.Inf
	if own != nil {
		limit = own.Limit()
	}
	if u := c.userPair(); u != nil {
		limit = min(limit, userSide(u).Limit())
	}
	if limit == rate.Inf {
		return c.chunk
	}
	return min(c.chunk, max(minPiece, int(float64(limit)*pieceTime.Seconds())))
}

func readSide(u *pair) *rate.Limiter  { return u.read }
func writeSide(u *pair) *rate.Limiter { return u.write }

// Read reads at most a piece, then waits until the limiters allow it.
func (c *conn) Read(p []byte) (int, error) {
	if k := c.piece(c.read, readSide); len(p) > k {
		p = p[:k]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if werr := c.wait(n, c.read, readSide); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Write writes p in pieces, waiting before each until the limiters allow
// it.
func (c *conn) Write(p []byte) (int, error) { return c.WriteProgress(p, nil) }

// WriteProgress is Write reporting each piece to moved as it is written
// (middleware.ProgressWriter): a paced Write of a relay buffer can take
// seconds, and the session's counters follow the pieces.
func (c *conn) WriteProgress(p []byte, moved func(int)) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), c.piece(c.write, writeSide))
		if err := c.wait(k, c.write, writeSide); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[:k])
		written += n
		if n > 0 && moved != nil {
			moved(n)
		}
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// Close ends any wait in progress and closes the client conn.
func (c *conn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

// Inner returns the wrapped conn (middleware.ReadThrough): Read buffers
// nothing, so the relay may wait on the inner socket while idle.
func (c *conn) Inner() net.Conn { return c.Conn }

// CloseWrite half-closes the client conn, as the relay does when the target
// has no more to send. It fails with errors.ErrUnsupported when the inner
// conn cannot half-close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("ratelimit: CloseWrite on %T: %w", c.Conn, errors.ErrUnsupported)
}

// AllowBytes implements middleware.Pacer for UDP datagrams: n bytes up
// (as read from the client) or down (as written to it), from the
// connection's limiter and the user's, without waiting.
func (c *conn) AllowBytes(up bool, n int) bool {
	own, userSide := c.write, writeSide
	if up {
		own, userSide = c.read, readSide
	}
	now := time.Now()
	if own != nil && !own.AllowN(now, n) {
		return false
	}
	if u := c.userPair(); u != nil {
		return userSide(u).AllowN(now, n)
	}
	return true
}

// wait takes n bytes from the connection's limiter, then from the user's.
func (c *conn) wait(n int, own *rate.Limiter, userSide func(*pair) *rate.Limiter) error {
	if own != nil {
		if err := waitN(c.ctx, own, n); err != nil {
			return err
		}
	}
	if u := c.userPair(); u != nil {
		return waitN(c.ctx, userSide(u), n)
	}
	return nil
}

// userPair returns the user's limiters, or nil while there is no user (or
// no per-user limit).
func (c *conn) userPair() *pair {
	if c.users == nil {
		return nil
	}
	if u := c.user.Load(); u != nil {
		return u
	}
	name := c.s.User
	if name == "" {
		return nil
	}
	c.user.CompareAndSwap(nil, c.users.get(name)) // both sides get the same pair
	return c.user.Load()
}

// waitN waits for n bytes in steps no larger than the limiter's burst, which
// a rebuild may have lowered since the caller sized its chunk.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := n
		if b := l.Burst(); b > 0 && k > b {
			k = b
		}
		if err := l.WaitN(ctx, k); err != nil {
			return fmt.Errorf("%w: %w", ErrWait, err)
		}
		n -= k
	}
	return nil
}
