package core

import (
	"net"
	"sync"
)

// hsBufSize holds the largest greeting, authentication and request a client
// may pipeline in one write (257 + 513 + 262 octets) with room to spare.
const hsBufSize = 1536

// hsReader reads handshake messages from the client through one small
// buffer: a client that pipelines greeting, authentication and request is
// served by a single read, one that sends a byte at a time by as many reads
// as it takes. Bytes read past the request (early data) are kept for the
// relay.
type hsReader struct {
	conn net.Conn
	r, w int
	buf  [hsBufSize]byte
}

var hsPool = sync.Pool{New: func() any { return new(hsReader) }}

func getHSReader(c net.Conn) *hsReader {
	h := hsPool.Get().(*hsReader)
	h.conn, h.r, h.w = c, 0, 0
	return h
}

func (h *hsReader) release() {
	h.conn = nil
	hsPool.Put(h)
}

// buffered returns the bytes read but not yet consumed.
func (h *hsReader) buffered() []byte { return h.buf[h.r:h.w] }

// next parses one message with parse, reading more from the client until
// the message is complete. The message's slices alias the buffer until the
// next call.
func next[T any](h *hsReader, parse func([]byte) (T, int, error)) (T, error) {
	for {
		msg, n, err := parse(h.buf[h.r:h.w])
		if err == nil {
			h.r += n
			return msg, nil
		}
		if err != errShort {
			return msg, err
		}
		if h.w == len(h.buf) {
			if h.r == 0 {
				return msg, ErrMessageTooLong
			}
			h.w = copy(h.buf[:], h.buf[h.r:h.w])
			h.r = 0
		}
		nr, rerr := h.conn.Read(h.buf[h.w:])
		h.w += nr
		if rerr != nil && nr == 0 {
			return msg, rerr
		}
	}
}
