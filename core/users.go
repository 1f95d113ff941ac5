package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// userEntry keeps a digest of the password, never the password itself, and
// compares digests in constant time (so the length leaks nothing either).
type userEntry struct {
	role   middleware.Role
	digest [sha256.Size]byte
}

// Users is an immutable user table. A change builds a new table (see
// Draft); a table in use is never mutated, so readers take no lock.
type Users struct {
	m map[string]userEntry
}

var _ middleware.Credentials = (*Users)(nil)

// Verify checks a password in constant time and returns the user's role.
// An unknown user costs the same digest and compare as a known one.
func (u *Users) Verify(name, password string) (middleware.Role, bool) {
	e, ok := u.m[name]
	d := sha256.Sum256([]byte(password))
	match := subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1
	if !ok || !match {
		return 0, false
	}
	return e.role, true
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.m) }

// Has reports whether the user exists.
func (u *Users) Has(name string) bool {
	_, ok := u.m[name]
	return ok
}

// List returns the users sorted by name.
func (u *Users) List() []middleware.User {
	out := make([]middleware.User, 0, len(u.m))
	for name, e := range u.m {
		out = append(out, middleware.User{Name: name, Role: e.role})
	}
	slices.SortFunc(out, func(a, b middleware.User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (u *Users) admins() int {
	n := 0
	for _, e := range u.m {
		if e.role == middleware.RoleAdmin {
			n++
		}
	}
	return n
}

// clone returns a mutable copy for a Draft.
func (u *Users) clone() *Users {
	m := make(map[string]userEntry, len(u.m)+1)
	for k, v := range u.m {
		m[k] = v
	}
	return &Users{m: m}
}

// set adds or replaces a user; only Draft calls it, on a clone.
func (u *Users) set(name, password string, role middleware.Role) error {
	if err := validCredential(name, password); err != nil {
		return err
	}
	if role != middleware.RoleAdmin && role != middleware.RoleBasic {
		return fmt.Errorf("%w: user %q", middleware.ErrUnknownRole, name)
	}
	u.m[name] = userEntry{role: role, digest: sha256.Sum256([]byte(password))}
	return nil
}

func validCredential(name, password string) error {
	if len(name) < 1 || len(name) > 255 || len(password) < 1 || len(password) > 255 {
		return ErrBadUser
	}
	return nil
}
