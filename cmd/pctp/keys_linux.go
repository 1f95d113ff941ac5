package main

import (
	"errors"
	"syscall"
)

// keyPoll is how long a wait for a key lasts before the reader looks
// whether it should stop.
const keyPollMicros = 50_000

// keyReader reads key presses from a terminal and, once stopped, leaves
// no read pending: the prompt reads the same terminal after the view. It
// waits with select(2) and reads only what is there, so the descriptor
// keeps its blocking mode (which stdout usually shares: a non-blocking
// terminal would make writes of a frame fail on a slow link).
type keyReader struct {
	keys chan byte
	quit chan struct{}
	done chan struct{}
}

func startKeys(fd int) *keyReader {
	k := &keyReader{keys: make(chan byte, 16), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		buf := make([]byte, 64)
		for {
			select {
			case <-k.quit:
				return
			default:
			}
			var set syscall.FdSet
			set.Bits[fd/64] |= 1 << (uint(fd) % 64)
			tv := syscall.Timeval{Usec: keyPollMicros}
			n, err := syscall.Select(fd+1, &set, nil, nil, &tv)
			if errors.Is(err, syscall.EINTR) || (err == nil && n == 0) {
				continue
			}
			if err != nil {
				return
			}
			n, err = syscall.Read(fd, buf)
			if err != nil || n == 0 {
				return
			}
			for _, b := range buf[:n] {
				select {
				case k.keys <- b:
				default: // keys typed faster than they are looked at
				}
			}
		}
	}()
	return k
}

// stop ends the reading; no read is pending when it returns.
func (k *keyReader) stop() {
	close(k.quit)
	<-k.done
}
