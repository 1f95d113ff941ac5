// Package auth is the "auth" stage: it installs the Authenticator that the
// terminal handler uses to choose a SOCKS method and to check RFC 1929
// credentials against the live user table, and it counts failed logins.
package auth

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "auth"

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "checks user names and passwords (RFC 1929) against the user table; optionally lets anonymous clients in",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Anonymous lets clients in without credentials (method 0x00).
	Anonymous bool `json:"anonymous"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config { return Config{Anonymous: false} }

// counters is the state that outlives a rebuild of the chain.
type counters struct {
	failed atomic.Int64
}

// stage is immutable after New.
type stage struct {
	authn *authenticator
	state *counters
}

var (
	_ middleware.Middleware      = (*stage)(nil)
	_ middleware.AnonymousAccess = (*stage)(nil)
	_ middleware.StatsSource     = (*stage)(nil)
	_ middleware.Authenticator   = (*authenticator)(nil)
)

// New builds the stage from p. It is registered as the "auth" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	users := p.Users
	if users == nil {
		users = noUsers{}
	}
	return &stage{
		authn: &authenticator{users: users, anonymous: cfg.Anonymous},
		state: middleware.Get(p.Shared, p.Name, func() *counters { return new(counters) }),
	}, nil
}

// Wrap installs the authenticator before next and counts a failed
// authentication after it.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Auth = st.authn
		err := next.ServeConn(ctx, s)
		if s.AuthState == middleware.AuthFailed {
			st.state.failed.Add(1)
		}
		return err
	})
}

// AllowsAnonymous implements middleware.AnonymousAccess.
func (st *stage) AllowsAnonymous() bool { return st.authn.anonymous }

// Stats implements middleware.StatsSource: failed_auths counts the
// connections whose authentication failed since the proxy started.
func (st *stage) Stats() []middleware.Stat {
	return []middleware.Stat{{Key: "failed_auths", Value: st.state.failed.Load()}}
}

// authenticator is what the stage installs on every Session; it is shared
// by all of them and immutable.
type authenticator struct {
	users     middleware.Credentials
	anonymous bool
}

// Accepts offers user/password when there is at least one user, and no
// authentication only when the stage allows anonymous clients.
func (a *authenticator) Accepts(m middleware.Method) bool {
	switch m {
	case middleware.MethodPassword:
		return a.users.Len() > 0
	case middleware.MethodNoAuth:
		return a.anonymous
	}
	return false
}

// Authenticate checks the credentials with the user table, which compares
// passwords in constant time. The password never appears in the error.
func (a *authenticator) Authenticate(ctx context.Context, user, password string) (middleware.Role, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("auth: %w", err)
	}
	role, ok := a.users.Verify(user, password)
	if !ok {
		return 0, fmt.Errorf("auth: user %q: %w", user, middleware.ErrBadCredentials)
	}
	return role, nil
}

// noUsers stands in for a missing user table.
type noUsers struct{}

func (noUsers) Verify(string, string) (middleware.Role, bool) { return 0, false }
func (noUsers) Len() int                                      { return 0 }
