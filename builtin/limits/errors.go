package limits

import "errors"

// Sentinel errors.
var (
	// ErrTooManyConnections is wrapped by the error a session ends with
	// when the proxy already serves max_connections connections. The
	// session never reaches the rest of the chain, so the engine closes the
	// client connection before reading a byte of the handshake.
	ErrTooManyConnections = errors.New("limits: too many connections")
	// ErrTooManyFromIP is wrapped likewise when the client's address
	// already has per_ip connections open.
	ErrTooManyFromIP = errors.New("limits: too many connections from this address")
	// ErrTooManyForUser is wrapped, in a *middleware.ReplyError with
	// ReplyNotAllowed, by the dial of a user who already has per_user
	// connections open: the client gets reply 0x02 after the handshake.
	ErrTooManyForUser = errors.New("limits: too many connections for this user")
	// ErrNegative is wrapped, with middleware.ErrBadValue and naming the
	// key, for a negative limit.
	ErrNegative = errors.New("limits: a limit cannot be negative")
)
