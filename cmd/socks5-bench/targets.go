package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	bulkBuf = 256 << 10 // read/write size of the bulk paths
	echoBuf = 1 << 10   // small: the held phase keeps one per connection
)

// targets are the loopback servers the bench connects to, directly or
// through a proxy. All listen on 127.0.0.1 only.
//
//   - sink: the client first sends an 8-byte big-endian unit U; the sink
//     then reads and discards, and each time its running total crosses a
//     multiple of U it writes the total back as 8 bytes, so an upload can be
//     timed until its last byte arrived.
//   - source: waits for one byte, then writes endlessly until the
//     connection fails.
//   - echo: writes back what it reads.
type targets struct {
	sink, source, echo netip.AddrPort

	lns   []net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTargets() (*targets, error) {
	t := &targets{conns: make(map[net.Conn]struct{})}
	for _, s := range []struct {
		addr   *netip.AddrPort
		handle func(net.Conn)
	}{
		{&t.sink, serveSink},
		{&t.source, serveSource},
		{&t.echo, serveEcho},
	} {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Close()
			return nil, err
		}
		t.lns = append(t.lns, ln)
		*s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		t.wg.Add(1)
		go t.serve(ln, s.handle)
	}
	return t, nil
}

func (t *targets) serve(ln net.Listener, handle func(net.Conn)) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: the held phase may touch the limit.
			// The client side sees the failure; pause, keep accepting.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		if t.conns == nil { // closed
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			handle(c)
			c.Close()
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
		}()
	}
}

// count is the number of open accepted connections.
func (t *targets) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Close stops the listeners, closes every accepted connection and waits
// for the handlers to return.
func (t *targets) Close() {
	for _, ln := range t.lns {
		ln.Close()
	}
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.conns = nil
	t.mu.Unlock()
	t.wg.Wait()
}

func serveSink(c net.Conn) {
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	unit := binary.BigEndian.Uint64(hdr[:])
	if unit == 0 {
		return
	}
	buf := make([]byte, bulkBuf)
	var total, acked uint64
	for {
		n, err := c.Read(buf)
		total += uint64(n)
		if total/unit > acked/unit {
			binary.BigEndian.PutUint64(hdr[:], total)
			if _, werr := c.Write(hdr[:]); werr != nil {
				return
			}
			acked = total
		}
		if err != nil {
			return
		}
	}
}

func serveSource(c net.Conn) {
	var go1 [1]byte
	if _, err := io.ReadFull(c, go1[:]); err != nil {
		return
	}
	buf := make([]byte, bulkBuf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func serveEcho(c net.Conn) {
	buf := make([]byte, echoBuf)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
