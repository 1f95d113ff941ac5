// Package testlog holds a log sink shared by the module's tests, which
// cannot import each other's test files.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a logger and a test can share: Write and
// String are safe to call from several goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
