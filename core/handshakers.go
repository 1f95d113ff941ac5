package core

import (
	"slices"
	"sync"
	"time"
)

// handshakePool runs the connections' SOCKS handshakes (terminal.open) on
// goroutines that outlive them. A handshake's calls (authentication, the
// dial) go deep, so the goroutine running one grows to an 8 KiB stack; a
// goroutine per handshake would start at 2 KiB (see socks5dmain's
// smallStacks) and have its stack copied twice on the way, for every
// connection. A worker instead goes back to the pool after each handshake
// and keeps its stack for the next one, until it has waited idleFor with
// nothing to do. At most maxIdle wait; more at once end after their
// handshake.
type handshakePool struct {
	maxIdle int
	idleFor time.Duration

	mu   sync.Mutex
	idle []*handshaker // the most recently used last
}

// handshaker is one worker of the pool: it is handed its next job on
// jobs.
type handshaker struct {
	jobs  chan job
	timer *time.Timer
}

// job is what a worker runs: an *opening, which recovers its own panic.
type job interface{ run() }

// handshakers is the process's pool.
var handshakers = handshakePool{maxIdle: 128, idleFor: time.Second}

// run runs o on an idle worker, or on a new one.
func (p *handshakePool) run(o job) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- o
		return
	}
	p.mu.Unlock()
	go p.work(o)
}

// work is a worker's life: o, then whatever it is handed while it is in
// the idle list.
func (p *handshakePool) work(o job) {
	w := &handshaker{jobs: make(chan job, 1)}
	for {
		o.run()
		if !p.park(w) {
			return
		}
		if w.timer == nil {
			w.timer = time.NewTimer(p.idleFor)
		} else {
			w.timer.Reset(p.idleFor)
		}
		select {
		case o = <-w.jobs:
			w.timer.Stop()
			continue
		case <-w.timer.C:
		}
		if p.unpark(w) {
			return
		}
		// run took it from the list as its time ran out: a job is coming.
		o = <-w.jobs
	}
}

// park puts w in the idle list; false if the list is full.
func (p *handshakePool) park(w *handshaker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= p.maxIdle {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// unpark takes w out of the idle list; false if run already took it.
func (p *handshakePool) unpark(w *handshaker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == w {
			p.idle = slices.Delete(p.idle, i, i+1)
			return true
		}
	}
	return false
}
