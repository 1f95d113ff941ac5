package core

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// chattyBuf is the buffer size of the relay's read mode: small messages
// (requests, keystrokes, acknowledgements) are copied through it; a read
// that fills it means bulk data, which is spliced instead.
const chattyBuf = 4096

// spliceChunk bounds one kernel splice, so the byte counters advance at
// least once per chunk during long transfers.
const spliceChunk = 1 << 20

// relayTimeouts are the relay's two idle limits.
type relayTimeouts struct {
	// idle closes a relay with no bytes either way for this long (0: off).
	idle time.Duration
	// linger bounds how long the remaining direction may stay idle once
	// the other has ended (half-close).
	linger time.Duration
}

// relayState is shared by a relay's two directions.
type relayState struct {
	relayTimeouts
	// halfAt is when the first direction ended (unix ns), 0 before.
	halfAt atomic.Int64
	// last is when bytes last moved either way (unix ns): the session's
	// Active, which SESSIONS shows too.
	last *atomic.Int64
}

// deadline is when a read must give up: the idle limit counted from the
// last bytes either way and, once half-closed, the linger limit counted
// from own (the later of the half-close and the reading direction's last
// bytes); the earlier of the two. Zero means none.
func (st *relayState) deadline(own int64) time.Time {
	var dl time.Time
	if st.idle > 0 {
		dl = time.Unix(0, st.last.Load()).Add(st.idle)
	}
	if h := st.halfAt.Load(); h != 0 {
		l := time.Unix(0, max(h, own)).Add(st.linger)
		if dl.IsZero() || l.Before(dl) {
			dl = l
		}
	}
	return dl
}

// relay copies both directions concurrently until both have ended. One
// side's EOF becomes a CloseWrite on the other while the opposite direction
// keeps flowing, idle at most linger. An error in either direction, or
// the idle timeout, ends both.
//
// The connection's goroutine runs the up direction and waits below this
// frame while the relay idles, so the setup is a call of its own.
func relay(s *middleware.Session, client, target net.Conn, ioSize int, t relayTimeouts) error {
	p := startRelay(s, client, target, ioSize, t)
	err := p.up.run()
	if err != nil {
		// Abort the other direction at once.
		client.Close()
		target.Close()
	}
	p.downDone.Wait()
	if derr := p.downErr; derr != nil {
		client.Close()
		target.Close()
		err = errors.Join(err, derr)
	}
	return err
}

// relayPair is a relay's state and its two directions, in one allocation.
type relayPair struct {
	st       relayState
	up, down direction
	// downDone is done when the down direction has ended, with downErr.
	downDone sync.WaitGroup
	downErr  error
}

// startRelay sets the relay up and starts its down direction on a
// goroutine of its own.
func startRelay(s *middleware.Session, client, target net.Conn, ioSize int, t relayTimeouts) *relayPair {
	p := &relayPair{st: relayState{relayTimeouts: t, last: &s.Active}}
	p.up = direction{dst: target, src: client, count: &s.Up, ioSize: ioSize, st: &p.st}
	p.down = direction{dst: client, src: target, count: &s.Down, ioSize: ioSize, st: &p.st}
	if t.idle > 0 {
		now := time.Now()
		p.st.last.Store(now.UnixNano())
		_ = client.SetReadDeadline(now.Add(t.idle))
		_ = target.SetReadDeadline(now.Add(t.idle))
	}
	p.downDone.Add(1)
	go p.runDown()
	return p
}

// runDown runs the down direction and records how it ended.
func (p *relayPair) runDown() {
	defer p.downDone.Done()
	// A conn wrapper's panic here must not take the server down; the
	// handler goroutine recovers its own.
	defer func() {
		if r := recover(); r != nil {
			p.downErr = fmt.Errorf("%w: %v", errRelayPanic, r)
		}
	}()
	p.downErr = p.down.run()
}

// direction is one half of a relay: src to dst.
type direction struct {
	dst, src net.Conn
	count    *atomic.Int64
	ioSize   int
	st       *relayState
	ready    readiness
	// lr bounds one splice (spliceChunk, or the bytes queued).
	lr io.LimitedReader
	// own is when this direction last moved bytes (unix ns), kept once
	// the relay is half-closed, for the linger limit. Only this
	// direction's goroutine touches it.
	own int64
}

// run copies until src's EOF, then half-closes dst. It returns nil on a
// clean EOF.
func (d *direction) run() error {
	if err := d.copy(); err != nil {
		return err
	}
	if d.st.halfAt.CompareAndSwap(0, time.Now().UnixNano()) {
		// The other direction (reading dst) may now idle at most linger.
		_ = d.dst.SetReadDeadline(d.st.deadline(0))
	}
	// A conn that cannot half-close (or a wrapper over one) is closed: the
	// peer must see the EOF either way.
	if cw, ok := d.dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		d.dst.Close()
	}
	return nil
}

// copy moves src to dst, adding to count per chunk. An idle direction holds
// no buffer and no pipe: it first waits until src is readable, and only
// then takes a pooled buffer or lets the kernel splice exactly the bytes
// that are waiting.
func (d *direction) copy() error {
	d.ready.init(d.src)
	dt, dok := d.dst.(*net.TCPConn)
	st, sok := d.src.(*net.TCPConn)
	if dok && sok {
		return d.splice(dt, st)
	}
	return d.buffered()
}

// splice moves bytes between two TCP conns in one of two ways. While the
// traffic is chatty, it reads what is queued straight into a pooled buffer
// and writes it out: two system calls a message. Once a read fills the
// buffer, bulk data is flowing, and it lets the kernel splice exactly the
// bytes queued, until the queue runs short again. Either way an idle
// direction holds no buffer and no pipe.
func (d *direction) splice(dst, src *net.TCPConn) error {
	lr := &d.lr
	lr.R = src
	bulk := false
	for {
		if !bulk {
			bp, n, err := d.ready.read(chattyPool)
			if err != nil {
				if errors.Is(err, errNoRawRead) {
					bulk = true
					continue
				}
				if d.rearm(err) {
					continue
				}
				return err
			}
			if n == 0 {
				return nil // EOF
			}
			nw, werr := dst.Write((*bp)[:n])
			chattyPool.Put(bp)
			d.count.Add(int64(nw))
			if werr != nil {
				return werr
			}
			d.progress()
			bulk = n == chattyBuf
			continue
		}
		avail, err := d.ready.wait()
		if err != nil {
			if d.rearm(err) {
				continue
			}
			return err
		}
		if avail == 0 {
			return nil // EOF
		}
		lr.N = int64(min(avail, spliceChunk))
		n, err := dst.ReadFrom(lr)
		d.count.Add(n)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // EOF
		}
		d.progress()
		bulk = avail >= chattyBuf
	}
}

func (d *direction) buffered() error {
	pool := poolFor(d.ioSize)
	// A writer that paces its pieces reports each as it goes out.
	pw, paced := d.dst.(middleware.ProgressWriter)
	moved := func(n int) {
		d.count.Add(int64(n))
		d.progress()
	}
	for {
		if _, err := d.ready.wait(); err != nil {
			if d.rearm(err) {
				continue
			}
			return err
		}
		bp := pool.Get().(*[]byte)
		nr, rerr := d.src.Read((*bp)[:d.ioSize])
		var werr error
		switch {
		case nr > 0 && paced:
			_, werr = pw.WriteProgress((*bp)[:nr], moved)
		case nr > 0:
			var nw int
			nw, werr = d.dst.Write((*bp)[:nr])
			moved(nw)
		}
		pool.Put(bp)
		switch {
		case werr != nil:
			return werr
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if d.rearm(rerr) {
				continue
			}
			return rerr
		}
	}
}

// progress records when bytes moved, for the idle and linger limits and
// for SESSIONS.
func (d *direction) progress() {
	now := time.Now().UnixNano()
	d.st.last.Store(now)
	d.own = now
}

// rearm handles a read deadline that passed: if bytes moved since it was
// set (the other direction, or this one), it sets the next deadline and
// reports true; otherwise the relay has been idle too long.
func (d *direction) rearm(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	dl := d.st.deadline(d.own)
	if dl.IsZero() || !dl.After(time.Now()) {
		return false
	}
	_ = d.src.SetReadDeadline(dl)
	return true
}

// readiness waits on a conn's socket until it is readable, holding nothing
// meanwhile: wait only reports how many bytes are queued, read also reads
// them into a buffer taken at that moment. It looks through wrappers that
// declare middleware.ReadThrough; for a conn with no socket wait does not
// wait and read is not available.
type readiness struct {
	rc syscall.RawConn
	// fn is the RawConn.Read callback, made once per direction (no
	// allocation per wait); reading says whether it reads (read) or only
	// checks (wait).
	fn      func(fd uintptr) bool
	reading bool
	// For read: the pool to take a buffer from, the buffer and bytes read.
	pool  *sync.Pool
	buf   *[]byte
	avail int
	peek  [1]byte
	err   error
}

func (r *readiness) init(c net.Conn) {
	r.fn = func(fd uintptr) bool {
		if r.reading {
			return r.readFD(fd)
		}
		return r.checkFD(fd)
	}
	for {
		if sc, ok := c.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				r.rc = rc
			}
			return
		}
		u, ok := c.(middleware.ReadThrough)
		if !ok {
			return
		}
		c = u.Inner()
	}
}

// wait blocks until the socket has data, EOF or an error (or the read
// deadline passes) and returns how many bytes are waiting: 0 means EOF.
// Without a socket it returns spliceChunk at once.
func (r *readiness) wait() (int, error) {
	if r.rc == nil {
		return spliceChunk, nil
	}
	r.avail, r.err = 0, nil
	r.reading = false
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	return r.avail, r.err
}

// read waits until the socket has data and reads it into a buffer from
// pool, taken only once there is data: it returns the buffer (the
// caller puts it back) and the bytes read, 0 at EOF.
func (r *readiness) read(pool *sync.Pool) (*[]byte, int, error) {
	if r.rc == nil {
		return nil, 0, errNoRawRead
	}
	r.pool, r.buf, r.avail, r.err = pool, nil, 0, nil
	r.reading = true
	if err := r.rc.Read(r.fn); err != nil {
		return nil, 0, err
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return r.buf, r.avail, nil
}

// bufferPools holds the relay buffers by size class: class k holds
// buffers of 1<<k bytes, and a relay of IO size n takes them from the
// smallest class that fits n and reads into the first n bytes. So the
// number of pools is bounded (one per power of two, created on first use)
// however many IO sizes are set over the server's life, and a buffer left
// by an old size serves the next size of its class. poolFor is looked up
// once per relay direction, not per chunk.
var bufferPools [bits.UintSize]atomic.Pointer[sync.Pool] // of *[]byte

func poolFor(size int) *sync.Pool {
	k := bits.Len(uint(max(size, 1) - 1)) // 1<<k >= size
	if p := bufferPools[k].Load(); p != nil {
		return p
	}
	p := &sync.Pool{New: func() any {
		b := make([]byte, 1<<k)
		return &b
	}}
	if bufferPools[k].CompareAndSwap(nil, p) {
		return p
	}
	return bufferPools[k].Load()
}

// chattyPool holds the read mode's buffers.
var chattyPool = poolFor(chattyBuf)
