package quota

import "errors"

// Sentinel errors.
var (
	// ErrQuotaReached is wrapped by the error of a request refused because
	// its user has used the quota of the period (inside a
	// middleware.ReplyError with reply 0x02), and by the error that ends an
	// open connection when its user reaches the quota.
	ErrQuotaReached = errors.New("quota: traffic quota reached")
	// ErrStore is wrapped by the error of a quota count that could not be
	// read from or written to the state store; the counts are kept in
	// memory and written again at the next save.
	ErrStore = errors.New("quota: state store")
)
