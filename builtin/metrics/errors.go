package metrics

import "errors"

// Sentinel errors.
var (
	// ErrNegative is wrapped, with middleware.ErrBadValue and naming the
	// key, for a negative max_users.
	ErrNegative = errors.New("metrics: max_users cannot be negative")
	// ErrBuckets is wrapped, with middleware.ErrBadValue and naming the
	// key, for latency_buckets that are empty, not positive or not in
	// strictly ascending order.
	ErrBuckets = errors.New("metrics: latency buckets must be positive and strictly ascending")
)
