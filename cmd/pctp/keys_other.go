//go:build !linux

package main

import "os"

// keyReader reads key presses from the terminal. Elsewhere than on
// Linux it is a plain blocking read: after the view ends, the next key
// typed may be lost to it.
type keyReader struct {
	keys chan byte
	done chan struct{}
}

func startKeys(fd int) *keyReader {
	k := &keyReader{keys: make(chan byte, 16), done: make(chan struct{})}
	f := os.NewFile(uintptr(fd), "keys")
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			for _, b := range buf[:n] {
				select {
				case k.keys <- b:
				case <-k.done:
					return
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return k
}

func (k *keyReader) stop() { close(k.done) }
