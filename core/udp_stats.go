package core

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

// The limits and counters of UDP associations, and the STATS keys of the
// engine's BIND and UDP ASSOCIATE.

// udpKey identifies whose associations a per-user limit counts: the user,
// or the client IP of an anonymous session.
type udpKey struct {
	user string
	ip   netip.Addr
}

// udpState is the runtime's UDP limits and counters; it outlives
// snapshots.
type udpState struct {
	mu      sync.Mutex
	perKey  map[udpKey]int
	open    atomic.Int64 // changed under mu, read freely
	relayed atomic.Int64
	// Datagrams dropped: FRAG != 0, from a foreign address, refused by a
	// policy, and for any other reason (malformed, unresolvable, unsendable).
	droppedFrag, droppedForeign, droppedPolicy, droppedRate, droppedOther atomic.Int64
}

// acquire counts a new association for key unless a limit (0: none) is
// reached.
func (u *udpState) acquire(key udpKey, limit, perKey int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if limit > 0 && u.open.Load() >= int64(limit) {
		return false
	}
	if perKey > 0 && u.perKey[key] >= perKey {
		return false
	}
	if u.perKey == nil {
		u.perKey = map[udpKey]int{}
	}
	u.perKey[key]++
	u.open.Add(1)
	return true
}

// release ends an association counted by acquire.
func (u *udpState) release(key udpKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.perKey[key] <= 1 {
		delete(u.perKey, key)
	} else {
		u.perKey[key]--
	}
	u.open.Add(-1)
}

// commandStats appends the engine's BIND and UDP statistics.
func (r *Runtime) commandStats(out []middleware.Stat) []middleware.Stat {
	u := &r.udp
	return append(out,
		middleware.Stat{Key: "udp_associations", Value: u.open.Load()},
		middleware.Stat{Key: "udp_datagrams_dropped_frag", Value: u.droppedFrag.Load()},
		middleware.Stat{Key: "udp_datagrams_dropped_foreign", Value: u.droppedForeign.Load()},
		middleware.Stat{Key: "udp_datagrams_dropped_policy", Value: u.droppedPolicy.Load()},
		middleware.Stat{Key: "udp_datagrams_dropped_rate", Value: u.droppedRate.Load()},
		middleware.Stat{Key: "udp_datagrams_dropped_other", Value: u.droppedOther.Load()},
		middleware.Stat{Key: "udp_datagrams_relayed", Value: u.relayed.Load()},
		middleware.Stat{Key: "bind_refused_peers", Value: r.bindRefused.Load()},
	)
}
