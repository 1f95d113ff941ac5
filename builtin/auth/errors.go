package auth

import "errors"

// Sentinel errors.
var (
	// ErrBanned is wrapped, beside middleware.ErrBadCredentials, by the
	// error of an authentication refused because the client's address is
	// banned after repeated failures; the password was not checked.
	ErrBanned = errors.New("auth: client address banned after repeated authentication failures")
	// ErrCheckBudget is wrapped, beside middleware.ErrBadCredentials, by
	// the error of an authentication refused because the client's address
	// group has used its allowance of slow password checks (bcrypt); the
	// password was not checked.
	ErrCheckBudget = errors.New("auth: client address out of password checks")
)
