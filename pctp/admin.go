package pctp

import "github.com/socks5d/socks5d/middleware"

// Admin is the proxy as PCTP sees it; core.Admin (core.Runtime.Admin) satisfies it. Each admin
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

	// Sessions lists the open SOCKS connections, oldest first.
	Sessions() []middleware.SessionInfo
	// Kill closes one open connection; it fails for an unknown id.
	Kill(id uint64) error
	// KillUser closes every open connection of a user and says how many.
	KillUser(name string) int
	// UserStats returns one user's numbers; ok is false when no stage
	// keeps numbers for that user.
	UserStats(name string) (stats []middleware.Stat, ok bool)
	// Quotas lists the users with traffic counted this quota period, by
	// name; ok is false when no stage keeps quotas.
	Quotas() (list []middleware.QuotaUsage, ok bool)
	// ResetQuota sets a user's count this period back to 0; found is false
	// when there was no count for the user. It fails when no stage keeps
	// quotas or the count cannot be saved.
	ResetQuota(name string) (found bool, err error)

	// Purpose returns the key ("<stage>.<key>") of the setting or list
	// that serves p (middleware.Purposeful): with stage "", the first
	// stage in chain order that declares it, else the stage of that name.
	// The error says why none does.
	Purpose(p middleware.Purpose, stage string) (string, error)
	// Items returns a list setting ("filter.rules"), one line per item.
	Items(key string) ([]string, error)
	// InsertItem parses text as an item and inserts it as item pos
	// (1-based; 0 appends).
	InsertItem(key string, pos int, text string) error
	// DeleteItem removes item index (1-based).
	DeleteItem(key string, index int) error
}
