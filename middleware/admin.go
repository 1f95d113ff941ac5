package middleware

// Administration: what an administrator sees of open connections.

import (
	"net/netip"
	"time"
)

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
	// Egress is which way the connection left (Session.Egress), "" before
	// it dialed or when no egress stage said.
	Egress string
	// Listener names the listener that accepted the connection.
	Listener string
}

// QuotaUsage is one user's traffic quota as an administrator sees it.
type QuotaUsage struct {
	User   string
	Used   int64     // bytes moved this period, both directions
	Limit  int64     // bytes allowed per period
	Period string    // the period's id: "month:2026-12", "week:2026-11-30", "day:2026-12-03", "total"
	Resets time.Time // when the next period starts; zero for total
}

// QuotaKeeper is implemented by a stage that keeps traffic quotas per user
// (PCTP's QUOTA).
type QuotaKeeper interface {
	// Quotas lists the users with bytes counted this period, by name.
	Quotas() []QuotaUsage
	// ResetQuota sets the user's count this period back to 0; found is
	// false when the stage has no count for the user.
	ResetQuota(user string) (found bool, err error)
}
