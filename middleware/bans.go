package middleware

import (
	"net/netip"
	"time"
)

// BanBoard shares bans between the instances of a fleet (Params.Bans): a
// stage that bans a client group (the auth stage's brute-force guard)
// posts the ban, and every instance sharing the board refuses that group
// until the ban ends. The etcd store implements it with a lease whose
// time to live is the ban's length. Both methods are safe for concurrent
// use and never block on the network.
type BanBoard interface {
	// Ban posts a ban of group (see ClientGroup) for d. It returns at
	// once; a ban that cannot be posted is counted and logged by the
	// board, and stays local.
	Ban(group netip.Prefix, d time.Duration)
	// Banned reports whether a's group is under a ban posted by any
	// instance, and until when.
	Banned(a netip.Addr) (until time.Time, banned bool)
}
