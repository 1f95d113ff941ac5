package core

import (
	"sync"
	"testing"
	"time"
)

// funcJob is a job for the pool's tests.
type funcJob func()

func (f funcJob) run() { f() }

func (p *handshakePool) idleWorkers() []*handshaker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*handshaker(nil), p.idle...)
}

// runWait runs f on p and waits for it.
func runWait(p *handshakePool, f func()) {
	done := make(chan struct{})
	p.run(funcJob(func() { f(); close(done) }))
	<-done
}

func waitIdle(t *testing.T, p *handshakePool, n int) []*handshaker {
	t.Helper()
	var idle []*handshaker
	waitFor(t, "idle workers", func() bool { idle = p.idleWorkers(); return len(idle) == n })
	return idle
}

// TestHandshakersReuseWorkers: a finished worker waits in the idle list
// and runs the next job (so it keeps its grown stack); none is started
// for it.
func TestHandshakersReuseWorkers(t *testing.T) {
	p := &handshakePool{maxIdle: 4, idleFor: time.Minute}
	runWait(p, func() {})
	first := waitIdle(t, p, 1)[0]
	var during int
	runWait(p, func() { during = len(p.idleWorkers()) })
	if during != 0 {
		t.Errorf("%d idle workers while the only one ran the job, want 0", during)
	}
	if w := waitIdle(t, p, 1)[0]; w != first {
		t.Error("the second job ran on a new worker, not the idle one")
	}
}

// TestHandshakersBounded: at most maxIdle workers wait; the others end
// after their job.
func TestHandshakersBounded(t *testing.T) {
	p := &handshakePool{maxIdle: 2, idleFor: time.Minute}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		p.run(funcJob(func() { <-release; wg.Done() }))
	}
	close(release)
	wg.Wait()
	waitIdle(t, p, 2)
	time.Sleep(50 * time.Millisecond) // the other three have had time to park
	if n := len(p.idleWorkers()); n != 2 {
		t.Errorf("%d idle workers, want at most maxIdle 2", n)
	}
}

// TestHandshakersEndWhenIdle: a worker that waited idleFor ends.
func TestHandshakersEndWhenIdle(t *testing.T) {
	p := &handshakePool{maxIdle: 2, idleFor: 500 * time.Millisecond}
	runWait(p, func() {})
	waitIdle(t, p, 1)
	waitIdle(t, p, 0)
	runWait(p, func() {}) // on a new worker, as none waits
	waitIdle(t, p, 1)
}
