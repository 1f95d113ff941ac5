package middleware

import (
	"context"
	"net"
	"net/netip"
	"time"
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

// Stat is one statistic, a key: value line of PCTP's STATS.
type Stat struct {
	Key   string
	Value int64
}

// StatsSource is implemented by a stage that contributes to STATS.
// Stats must be safe to call concurrently with traffic.
type StatsSource interface {
	Stats() []Stat
}

// Record is one finished connection, as PCTP's LOGS and the connection log
// keep it.
type Record struct {
	ID        uint64
	Time      time.Time // when the connection was accepted
	User      string    // "" when there was none
	Client    netip.AddrPort
	Command   Command
	Target    Target // as the client asked
	Reply     Reply
	ReplySent bool
	Bytes     int64 // both directions
	AuthState AuthState
	Duration  time.Duration
	// Up and Down split Bytes: client → target and target → client.
	Up, Down int64
	// Reason is a short word for why the connection ended ("ok", "eof",
	// "timeout", ...). The stage that keeps the record sets it from the
	// error next returned; RecordOf leaves it empty.
	Reason string
}

// RecordOf returns the record of a finished session.
func RecordOf(s *Session) Record {
	up, down := s.Up.Load(), s.Down.Load()
	return Record{
		ID:        s.ID,
		Time:      s.Start,
		User:      s.User,
		Client:    s.Client,
		Command:   s.Command,
		Target:    s.Target,
		Reply:     s.Reply,
		ReplySent: s.ReplySent,
		Bytes:     up + down,
		AuthState: s.AuthState,
		Duration:  s.Duration(),
		Up:        up,
		Down:      down,
	}
}

// LogSource is implemented by a stage that keeps connection records (LOGS).
type LogSource interface {
	// Records returns up to n records, newest first; n <= 0 means all.
	Records(n int) []Record
}

// Setting is one live setting of a stage, as PCTP's CONFIG lists it.
type Setting struct {
	Key   string // the key in the stage's YAML entry
	Value string // its current value
	Help  string // one line
}

// Tunable is implemented by a stage whose settings may be read and changed
// while the proxy runs (PCTP CONFIG). A change is applied by rebuilding the
// stage from its configuration with the new value, so New validates it; a
// Tunable stage only lists which keys may change.
type Tunable interface {
	Settings() []Setting
}

// Editable is implemented by a stage with list settings that PCTP edits
// item by item, such as a destination policy's rules. The list is a key of
// the stage's YAML entry; an edit inserts or removes one item there and
// rebuilds the stage, so New validates the result.
type Editable interface {
	// Items returns the list under key, one line of text per item, in
	// order; ok is false when the stage has no such list.
	Items(key string) (items []string, ok bool)
	// ParseItem turns one line of text into the value New expects as an
	// item of the list key (the same shape as in the YAML file).
	ParseItem(key, text string) (any, error)
}

// ReadThrough is implemented by a conn wrapper (installed on Session.Conn)
// whose Read reads straight from the conn it wraps and buffers nothing.
// The relay then waits on the inner socket for data, so an idle connection
// holds no relay buffer. A wrapper that buffers (TLS, a bufio.Reader) must
// not implement it: the socket could be idle while the wrapper holds data.
type ReadThrough interface {
	Inner() net.Conn
}

// ProgressWriter is implemented by a conn wrapper (installed on
// Session.Conn) whose Write moves bytes out in pieces over a long time, as
// a rate limiter pacing them does. The relay writes through WriteProgress,
// so the session's byte counters and its last activity (SESSIONS' idle and
// rate, STATS) follow the bytes as they move rather than jumping when a
// long Write returns.
type ProgressWriter interface {
	// WriteProgress is Write that calls moved(n) after each piece of n > 0
	// bytes it has written; the pieces add up to the count it returns.
	// moved is cheap (atomic updates) and must not be retained.
	WriteProgress(p []byte, moved func(n int)) (int, error)
}

// UserStatsSource is implemented by a stage that keeps numbers per user
// (PCTP's STATS USER <name>).
type UserStatsSource interface {
	// UserStats returns the user's numbers; ok is false for a user the
	// stage has no numbers for.
	UserStats(user string) (stats []Stat, ok bool)
}

// Policy is implemented by a stage that decides which destinations a
// session may reach (a destination policy). The engine asks it for what
// does not go through the Dialer: each UDP datagram's destination and the
// peer of a BIND.
type Policy interface {
	// Allowed reports whether the session may reach dest with cmd. rule is
	// the index of the deciding rule, -1 for the default.
	//
	// A name is asked about twice, as a policy dialer does for CONNECT:
	// first with resolved nil, before any lookup, when the policy refuses
	// only a name it refuses whatever the name resolves to (a refused name
	// never reaches DNS); then, if that allowed it, with resolved holding
	// every address the name resolved to, each of which must be allowed.
	Allowed(s *Session, cmd Command, dest Target, resolved []netip.Addr) (allowed bool, rule int)
}

// SessionInfo describes an open connection, as PCTP's SESSIONS lists it.
type SessionInfo struct {
	ID      uint64
	User    string // "" before authentication or when anonymous
	Client  netip.AddrPort
	Command Command
	Target  Target // as asked; zero before the request
	Up      int64  // bytes client → target so far
	Down    int64  // bytes target → client so far
	Start   time.Time
	// Active is when bytes last moved either way (Start before any).
	Active time.Time
	// Rate is bytes per second both ways, over the time since the
	// previous listing (or since the start).
	Rate float64
}

// Pacer is what a rate-limiting stage installs on the Session for traffic
// that does not flow through Session.Conn: the engine asks it before
// relaying each UDP datagram. A datagram it refuses is dropped, never
// queued: that is UDP's answer to congestion.
type Pacer interface {
	// AllowBytes reports whether n more bytes may go now, up (client to
	// destination) or down (destination to client), and takes them.
	AllowBytes(up bool, n int) bool
}
