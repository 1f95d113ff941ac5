package auth

import "errors"

// Sentinel errors.
var (
	// ErrBanned is wrapped, beside middleware.ErrBadCredentials, by the
	// error of an authentication refused because the client's address is
	// banned after repeated failures; the password was not checked.
	ErrBanned = errors.New("auth: client address banned after repeated authentication failures")
)
