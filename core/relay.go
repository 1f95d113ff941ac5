package core

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// spliceChunk bounds one kernel splice, so the byte counters advance at
// least once per chunk during long transfers.
const spliceChunk = 1 << 20

// relay copies both directions concurrently until both have ended. One
// side's EOF becomes a CloseWrite on the other while the opposite direction
// keeps flowing; from then on that direction may stay idle at most linger.
// An error in either direction ends both.
func relay(s *middleware.Session, client, target net.Conn, ioSize int, linger time.Duration) error {
	var halfClosed atomic.Bool
	down := make(chan error, 1)
	go func() {
		down <- halfRelay(client, target, &s.Down, ioSize, &halfClosed, linger)
	}()
	upErr := halfRelay(target, client, &s.Up, ioSize, &halfClosed, linger)
	var downErr error
	if upErr != nil {
		// Abort the other direction at once.
		client.Close()
		target.Close()
		downErr = <-down
	} else {
		downErr = <-down
		if downErr != nil {
			client.Close()
			target.Close()
		}
	}
	return errors.Join(upErr, downErr)
}

// halfRelay copies src to dst until src's EOF, then half-closes dst. It
// returns nil on a clean EOF.
func halfRelay(dst, src net.Conn, count *atomic.Int64, ioSize int, halfClosed *atomic.Bool, linger time.Duration) error {
	err := copyCounted(dst, src, count, ioSize, halfClosed, linger)
	if err != nil {
		return err
	}
	if !halfClosed.Swap(true) {
		// The other direction may now idle at most linger.
		_ = dst.SetReadDeadline(time.Now().Add(linger))
	}
	// A conn that cannot half-close (or a wrapper over one) is closed:
	// the peer must see the EOF either way.
	if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
		dst.Close()
	}
	return nil
}

// copyCounted copies src to dst, adding to count per chunk. Between two TCP
// conns the kernel splices; otherwise a pooled buffer of ioSize is used.
func copyCounted(dst, src net.Conn, count *atomic.Int64, ioSize int, halfClosed *atomic.Bool, linger time.Duration) error {
	dt, dok := dst.(*net.TCPConn)
	st, sok := src.(*net.TCPConn)
	if dok && sok {
		lr := &io.LimitedReader{R: st}
		for {
			lr.N = spliceChunk
			n, err := dt.ReadFrom(lr)
			count.Add(n)
			if err != nil {
				return err
			}
			if n == 0 {
				return nil // EOF
			}
			if halfClosed.Load() {
				_ = src.SetReadDeadline(time.Now().Add(linger))
			}
		}
	}
	bp := getBuffer(ioSize)
	defer putBuffer(ioSize, bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			count.Add(int64(nw))
			if werr != nil {
				return werr
			}
			if halfClosed.Load() {
				_ = src.SetReadDeadline(time.Now().Add(linger))
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// bufferPools holds one sync.Pool of relay buffers per IO size.
var bufferPools sync.Map // int → *sync.Pool of *[]byte

func getBuffer(size int) *[]byte {
	p, ok := bufferPools.Load(size)
	if !ok {
		p, _ = bufferPools.LoadOrStore(size, &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}})
	}
	return p.(*sync.Pool).Get().(*[]byte)
}

func putBuffer(size int, b *[]byte) {
	if p, ok := bufferPools.Load(size); ok {
		p.(*sync.Pool).Put(b)
	}
}
