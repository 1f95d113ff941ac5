package connlog

import (
	"sync"

	"github.com/socks5d/socks5d/middleware"
)

// ring is a fixed-size ring of records. It lives in the shared state, so
// it outlives a rebuild.
//
// Its size is the live stage's: a stage resizes it when it is activated
// (middleware.Activator), so a stage built by a change that failed never
// touches it, and connections still running on an old chain cannot
// resize it back. Until a stage is activated (a host that does not
// activate stages, a benchmark) the first stage to use it sizes it.
type ring struct {
	mu   sync.Mutex
	buf  []middleware.Record // len(buf) is the size
	next int                 // where the next record goes
	n    int                 // records held
}

// resize gives the ring size records, keeping the newest.
func (r *ring) resize(size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resizeLocked(size)
}

// sized gives an unsized ring size records. It must be called with mu held.
func (r *ring) sized(size int) {
	if len(r.buf) == 0 {
		r.resizeLocked(size)
	}
}

// resizeLocked is resize with mu held.
func (r *ring) resizeLocked(size int) {
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

// add stores rec as the newest record; size sizes an unsized ring.
func (r *ring) add(rec *middleware.Record, size int) {
	r.mu.Lock()
	r.sized(size)
	r.put(rec)
	r.mu.Unlock()
}

// fill stores records read back from the file, given newest first, as the
// oldest records of the ring: the ones it already holds stay the newest.
// Records that do not fit are left out, the oldest first.
func (r *ring) fill(recs []middleware.Record, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sized(size)
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

// records returns up to n records, newest first (all for n <= 0).
func (r *ring) records(n int) []middleware.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > r.n {
		n = r.n
	}
	out := make([]middleware.Record, n)
	for i := range out {
		out[i] = r.buf[r.index(i)]
	}
	return out
}

// len returns how many records the ring holds.
func (r *ring) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
