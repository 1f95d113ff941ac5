package connlog

import "errors"

// Sentinel errors. Both are returned wrapped together with
// middleware.ErrBadValue and name the key.
var (
	// ErrSizeTooSmall: PCTP requires a ring of at least MinSize records.
	ErrSizeTooSmall = errors.New("connlog: size is below the minimum of 4096 records")
	// ErrSizeTooLarge: the ring is allocated up front; MaxSize bounds it.
	ErrSizeTooLarge = errors.New("connlog: size is above the maximum of 1048576 records")
)
