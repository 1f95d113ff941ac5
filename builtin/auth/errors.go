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
	// ErrBackend is wrapped by the error of an authentication backend
	// (a directory, a hook) that could not answer: unreachable, a refused
	// service account, a malformed answer. With on_error: deny (the
	// default) the authentication fails with it, beside
	// middleware.ErrBadCredentials.
	ErrBackend = errors.New("auth: backend unavailable")
	// ErrHookAnswer is wrapped, beside ErrBackend, when an HTTP hook's
	// answer is not the JSON it should be.
	ErrHookAnswer = errors.New("auth: malformed hook answer")
)
