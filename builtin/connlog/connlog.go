// Package connlog is the "connlog" stage: it keeps a record of every
// finished connection, failed ones included, in a ring for PCTP's LOGS.
package connlog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "connlog"

// Limits of the size key, in records.
const (
	// MinSize is the smallest ring PCTP allows.
	MinSize = 4096
	// MaxSize bounds the memory the ring takes (a record is under 200 bytes).
	MaxSize = 1 << 20
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "keeps the last connections (a ring of at least 4096 records) for LOGS",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Size is how many records the ring holds.
	Size int `json:"size"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config { return Config{Size: MinSize} }

// stage is immutable after New.
type stage struct {
	size int
	gen  uint64 // orders rebuilds; see ring.sync
	ring *ring
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.LogSource   = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "connlog" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Size < MinSize:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "size", cfg.Size, ErrSizeTooSmall)
	case cfg.Size > MaxSize:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "size", cfg.Size, ErrSizeTooLarge)
	}
	r := middleware.Get(p.Shared, p.Name, func() *ring { return new(ring) })
	return &stage{size: cfg.Size, gen: r.gens.Add(1), ring: r}, nil
}

// Wrap adds the session's record after next, however next ended.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		err := next.ServeConn(ctx, s)
		rec := middleware.RecordOf(s)
		st.ring.add(&rec, st.size, st.gen)
		return err
	})
}

// Records implements middleware.LogSource: up to n records, newest first;
// n <= 0 or more than are held returns all of them.
func (st *stage) Records(n int) []middleware.Record {
	return st.ring.records(n, st.size, st.gen)
}

// Stats implements middleware.StatsSource: log_records is how many records
// the ring holds now.
func (st *stage) Stats() []middleware.Stat {
	return []middleware.Stat{{Key: "log_records", Value: int64(st.ring.len(st.size, st.gen))}}
}

// ring is the state that outlives a rebuild: a fixed-size ring of records,
// allocated when first used.
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

func (r *ring) add(rec *middleware.Record, size int, gen uint64) {
	r.mu.Lock()
	r.sync(size, gen)
	r.buf[r.next] = *rec
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
	}
	if r.n < len(r.buf) {
		r.n++
	}
	r.mu.Unlock()
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
