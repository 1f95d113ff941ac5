package core

import (
	"net/netip"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// logEvery is how often one source's refusals of a kind are logged.
const logEvery = time.Minute

// maxGateSources bounds the sources a sourceGate remembers.
const maxGateSources = 4096

// sourceGate lets a log line through at most once per source per
// logEvery; a source is a client group (middleware.ClientGroup: an IPv4
// address, an IPv6 /64), as for bans. The PROXY-header refusals and the
// TLS handshake failures each have one. It remembers at most maxGateSources sources; when full,
// what it cannot remember is not logged but counted, and the next line
// logged says how many went unlogged.
type sourceGate struct {
	mu       sync.Mutex
	last     map[netip.Prefix]time.Time
	unlogged int64
}

func (g *sourceGate) allow(a netip.Addr, now time.Time) (bool, int64) {
	k := middleware.ClientGroup(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[netip.Prefix]time.Time{}
	}
	if t, ok := g.last[k]; ok && now.Sub(t) < logEvery {
		g.unlogged++
		return false, 0
	}
	if len(g.last) >= maxGateSources {
		for k, t := range g.last {
			if now.Sub(t) >= logEvery {
				delete(g.last, k)
			}
		}
		if len(g.last) >= maxGateSources {
			g.unlogged++
			return false, 0
		}
	}
	g.last[k] = now
	n := g.unlogged
	g.unlogged = 0
	return true, n
}
