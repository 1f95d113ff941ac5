package connlog

import "errors"

// Sentinel errors. Each is returned wrapped together with
// middleware.ErrBadValue and names the key.
var (
	// ErrSizeTooSmall: PCTP requires a ring of at least MinSize records.
	ErrSizeTooSmall = errors.New("connlog: size is below the minimum of 4096 records")
	// ErrSizeTooLarge: the ring is allocated up front; MaxSize bounds it.
	ErrSizeTooLarge = errors.New("connlog: size is above the maximum of 1048576 records")
	// ErrMaxSizeTooSmall: a log file must hold at least MinFileSize bytes
	// before it is rotated.
	ErrMaxSizeTooSmall = errors.New("connlog: max_size is below the minimum of 1KiB")
	// ErrKeepRange: keep counts rotated files, from 0 to MaxKeep.
	ErrKeepRange = errors.New("connlog: keep must be between 0 and 1000")
	// ErrQueueRange: queue counts records, from 1 to MaxQueue.
	ErrQueueRange = errors.New("connlog: queue must be between 1 and 1048576")
)
