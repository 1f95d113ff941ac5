package middleware

import (
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits of user names and passwords: RFC 1929 gives each one length
// octet, and PCTP and the configuration file keep the same range.
const (
	MinCredential = 1
	MaxCredential = 255
)

// ValidCredentialLength reports whether s is 1–255 octets long, the rule
// for user names and passwords alike.
func ValidCredentialLength(s string) bool {
	return len(s) >= MinCredential && len(s) <= MaxCredential
}

// CheckUserName checks a name for a user to be stored: 1–255 octets of
// valid UTF-8 without control characters (C0, DEL, C1), so that the state
// file (JSON) keeps it exactly and it prints as one field of a LIST or log
// line. The error wraps ErrCredentialLength or ErrUserNameText.
func CheckUserName(name string) error {
	if !ValidCredentialLength(name) {
		return ErrCredentialLength
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrUserNameText, name)
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q has a control character at octet %d", ErrUserNameText, name, i)
		}
	}
	return nil
}

// CheckPassword checks a password to be stored or checked: 1–255 octets,
// any octets. The error wraps ErrCredentialLength and never shows the
// password.
func CheckPassword(password string) error {
	if !ValidCredentialLength(password) {
		return ErrCredentialLength
	}
	return nil
}

// UserLookup is implemented by a Credentials that can say whether it holds
// a user without checking a password (the engine's user table does). An
// authentication stage with several sources of users asks it to decide
// which source checks the password.
type UserLookup interface {
	// Has reports whether the table holds a user of that name.
	Has(name string) bool
}

// LoginSource is implemented by an authentication stage whose users come
// from more than the engine's table (a directory, a hook). The admin port
// (PCTP) checks its logins through it, so a directory's ADMINs may log in
// there too; it applies its own per-source budgets before asking.
type LoginSource interface {
	// Login checks a user name and password as the stage checks a SOCKS
	// client's, without the stage's per-client budget, and returns the
	// user's role. It must not log the password.
	Login(ctx context.Context, user, password string) (Role, bool)
}

// CheckRemoval is the one rule for removing a user of role from a table
// that holds admins ADMIN users: the last ADMIN stays (ErrLastAdmin). The
// engine applies it under its lock; an Admin for PCTP does the same, and
// PCTP answers ErrLastAdmin with its own reply.
func CheckRemoval(role Role, admins int) error {
	if role == RoleAdmin && admins <= 1 {
		return ErrLastAdmin
	}
	return nil
}
