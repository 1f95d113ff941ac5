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
	// Listener names the listener that accepted the connection.
	Listener string
}
