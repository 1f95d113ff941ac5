package middleware

import (
	"errors"
	"io"
	"sync"
)

// Shared keeps state that must outlive a rebuild of the chain: counters, a
// log ring, rate limiters. The chain is rebuilt on every live change, and
// each rebuild calls New again; a stage finds its state here under its name
// instead of keeping it in the stage value. Values synchronise themselves.
type Shared struct {
	mu sync.Mutex
	m  map[string]any
}

// NewShared returns an empty pool.
func NewShared() *Shared { return &Shared{m: map[string]any{}} }

// Get returns the value stored under key, creating it with create the first
// time. create runs under the pool's lock and must be quick.
func Get[T any](p *Shared, key string, create func() T) T {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, found := p.m[key]
	if v, ok := old.(T); ok {
		return v
	}
	// The name now belongs to a stage of another type (a live change
	// replaced it): its old state is released, not leaked.
	if c, ok := old.(io.Closer); found && ok {
		_ = c.Close()
	}
	v := create()
	p.m[key] = v
	return v
}

// Close closes every value in the pool that is an io.Closer (a log
// writer flushing what it queued, say) and empties the pool. The server
// calls it once, after its connections have ended.
func (p *Shared) Close() error {
	p.mu.Lock()
	values := p.m
	p.m = map[string]any{}
	p.mu.Unlock()
	var errs []error
	for _, v := range values {
		if c, ok := v.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
