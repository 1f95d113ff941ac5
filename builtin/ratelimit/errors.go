package ratelimit

import "errors"

// Sentinel errors.
var (
	// ErrBurstTooSmall is returned, wrapped with middleware.ErrBadValue and
	// naming the key, for a burst below MinBurst.
	ErrBurstTooSmall = errors.New("ratelimit: burst is below the minimum of 4096 bytes")
	// ErrWait wraps the reason a Read or Write gave up waiting for
	// bandwidth: the connection's context was cancelled or it was closed.
	ErrWait = errors.New("ratelimit: wait for bandwidth")
)
