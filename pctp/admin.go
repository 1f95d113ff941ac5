package pctp

import "github.com/socks5d/socks5d/middleware"

// Admin is the proxy as PCTP sees it; core.Runtime satisfies it. Each admin
// session calls it from its own goroutine, so every method must be safe for
// concurrent use. Errors are shown to the administrator after "-ERR ", so
// they should say why in one line.
type Admin interface {
	// Login checks a user's credentials in constant time and returns the
	// user's role. It must never log the password.
	Login(user, password string) (middleware.Role, bool)
	// Stats returns every statistic, in chain order. PCTP puts the four
	// keys PCTP.md requires first.
	Stats() []middleware.Stat
	// Records returns up to n connection records, newest first; n <= 0
	// means all of them.
	Records(n int) []middleware.Record
	// Settings returns the live settings. Key is "<stage>.<key>", such as
	// "iobuf.size" or "ratelimit.per_user".
	Settings() []middleware.Setting
	// Set changes one setting (through Runtime.Update). The error says why
	// the change was refused; on error nothing changed.
	Set(key, value string) error
	// Users returns the users, sorted by name.
	Users() []middleware.User
	// AddUser adds a user. It fails if the name exists or the name or
	// password is invalid.
	AddUser(name, password string, role middleware.Role) error
	// DeleteUser removes a user and closes their open SOCKS sessions. It
	// fails if the user is unknown or is the last ADMIN.
	DeleteUser(name string) error
}
