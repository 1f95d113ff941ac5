package forward

import (
	"sync"
	"sync/atomic"
	"time"
)

// state outlives a rebuild (it lives in the shared pool under the stage's
// name): the counters and each upstream's health, kept by the upstream's
// scheme://host:port.
type state struct {
	direct, via, fallbacks, refused atomic.Int64

	mu        sync.Mutex
	upstreams map[string]*health
}

func newState() *state { return &state{upstreams: map[string]*health{}} }

// health is one upstream's counters and failure streak.
type health struct {
	connects, failures, skipped atomic.Int64

	mu     sync.Mutex
	streak int       // failures in a row
	until  time.Time // skipped until then
}

func (s *state) health(key string) *health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.upstreams[key]
	if !ok {
		h = &health{}
		s.upstreams[key] = h
	}
	return h
}

// usable reports whether the upstream may be tried now; a skipped one is
// counted.
func (h *health) usable(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.until) {
		h.skipped.Add(1)
		return false
	}
	return true
}

// ok records a success: the streak ends.
func (h *health) ok() {
	h.connects.Add(1)
	h.mu.Lock()
	h.streak, h.until = 0, time.Time{}
	h.mu.Unlock()
}

// fail records a failure; the limit-th in a row starts a backoff (and
// each failure after the backoff, while the streak lasts, starts another).
// It reports whether a backoff started.
func (h *health) fail(now time.Time, limit int, backoff time.Duration) bool {
	h.failures.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streak++
	if limit > 0 && h.streak >= limit && backoff > 0 {
		h.until = now.Add(backoff)
		return true
	}
	return false
}
