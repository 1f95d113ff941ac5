package connlog

import (
	"sync"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// ring is a fixed-size ring of records, allocated when first used. It
// lives in the shared state, so it outlives a rebuild.
//
// Its size follows the newest stage in use. Every New takes a generation
// number; a stage resizes the ring the first time it touches it, unless a
// newer one already has. A stage built but never installed (a failed
// change) never touches the ring, and connections still running on an old
// chain cannot shrink it back.
type ring struct {
	gens atomic.Uint64 // generations handed out by New

	mu      sync.Mutex
	applied uint64              // generation whose size buf has
	buf     []middleware.Record // len(buf) is the size
	next    int                 // where the next record goes
	n       int                 // records held
}

// sync resizes the ring for a stage of generation gen. It must be called
// with mu held.
func (r *ring) sync(size int, gen uint64) {
	if gen <= r.applied {
		return
	}
	r.applied = gen
	if size == len(r.buf) {
		return
	}
	keep := min(r.n, size)
	buf := make([]middleware.Record, size)
	// Copy the newest keep records, oldest first.
	for i := range keep {
		buf[i] = r.buf[r.index(keep-1-i)]
	}
	r.buf, r.n, r.next = buf, keep, keep%size
}

// index returns the position of the i-th newest record (0 is the newest).
// It must be called with mu held and i < r.n.
func (r *ring) index(i int) int {
	j := r.next - 1 - i
	if j < 0 {
		j += len(r.buf)
	}
	return j
}

// put stores a record as the newest. It must be called with mu held.
func (r *ring) put(rec *middleware.Record) {
	r.buf[r.next] = *rec
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
	}
	if r.n < len(r.buf) {
		r.n++
	}
}

func (r *ring) add(rec *middleware.Record, size int, gen uint64) {
	r.mu.Lock()
	r.sync(size, gen)
	r.put(rec)
	r.mu.Unlock()
}

// fill stores records read back from the file, given newest first, as the
// oldest records of the ring: the ones it already holds stay the newest.
// Records that do not fit are left out, the oldest first.
func (r *ring) fill(recs []middleware.Record, size int, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sync(size, gen)
	held := make([]middleware.Record, r.n) // oldest first
	for i := range held {
		held[i] = r.buf[r.index(r.n-1-i)]
	}
	room := min(len(recs), len(r.buf)-len(held))
	r.next, r.n = 0, 0
	for i := room - 1; i >= 0; i-- {
		r.put(&recs[i])
	}
	for i := range held {
		r.put(&held[i])
	}
}

func (r *ring) records(n, size int, gen uint64) []middleware.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sync(size, gen)
	if n <= 0 || n > r.n {
		n = r.n
	}
	out := make([]middleware.Record, n)
	for i := range out {
		out[i] = r.buf[r.index(i)]
	}
	return out
}

func (r *ring) len(size int, gen uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sync(size, gen)
	return r.n
}
