package middleware

// Authentication: what an auth stage installs on the Session and the
// user table it checks against.

import (
	"context"
)

// Authenticator is what an authentication stage installs on the Session.
// The terminal handler asks it which methods it accepts and hands it the
// RFC 1929 credentials; it never sees a password itself.
type Authenticator interface {
	// Accepts reports whether the client may use method m.
	Accepts(m Method) bool
	// Authenticate checks a user name and password. It returns the user's
	// role, or an error wrapping ErrBadCredentials. It must not log the
	// password.
	Authenticate(ctx context.Context, user, password string) (Role, error)
}

// ExternalUser is implemented by an Authenticator that may accept users
// the engine's user table does not hold (from a directory or an HTTP
// hook). The engine asks it after a successful Authenticate, in the same
// goroutine: a session whose user came from outside the table is not
// ended as "user deleted" because the table lacks the user.
type ExternalUser interface {
	// External reports whether the user of the last successful
	// Authenticate came from outside the user table.
	External() bool
}

// ExternalSource is implemented by an authentication stage that can
// accept users from outside the user table (a directory, a hook). The
// engine then accepts a configuration without users of its own.
type ExternalSource interface {
	HasExternalUsers() bool
}

// Credentials is the live user table as stages see it (Params.Users).
// Every call reads the table in force at that moment, so a change of users
// (a deletion, a new password) applies at once, also to connections
// accepted before it.
type Credentials interface {
	// Verify checks a password and returns the user's role. A wrong
	// password costs one slow hash (bcrypt) whether or not the user
	// exists. Before any slow hash Verify calls spend, when not nil; if
	// spend returns false the check fails without hashing (a budget of
	// hashing work per client).
	Verify(user, password string, spend func() bool) (Role, bool)
	// Len is the number of users.
	Len() int
}

// AnonymousAccess is implemented by a stage that can let clients in without
// credentials (method 0x00). The engine asks it at start-up to refuse a
// configuration in which nobody could use the proxy.
type AnonymousAccess interface {
	AllowsAnonymous() bool
}
