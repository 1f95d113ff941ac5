// Package portguard is a socks5d stage that lets CONNECT reach only the
// destination ports on its allow list, and counts what it allowed and
// refused. The list is a live setting: PCTP's CONFIG reads and changes it
// while the proxy serves.
//
//	chain:
//	  - use: portguard
//	    allow: [80, 443]   # destination ports CONNECT may reach (default [80, 443])
//
// It only guards CONNECT: the engine dials (and so asks a stage's Dialer)
// for CONNECT alone, never for BIND or UDP ASSOCIATE.
package portguard

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/socks5d/socks5d/middleware"
)

func init() {
	middleware.Register(middleware.Info{
		Type: "portguard",
		New:  New,
		Doc:  "lets CONNECT reach only the destination ports on its allow list",
	})
}

// config is the stage's entry in the chain: list. The kit's value types
// take every form an operator types (allow: [80, 443], allow: 80,443,
// allow: 443, CONFIG portguard.allow=80,443) and print one CONFIG reads
// back.
type config struct {
	Allow middleware.List[middleware.Port] `json:"allow"`
}

// counters outlive every rebuild of the chain (each CONFIG change builds a
// new stage): they live in the shared pool under the stage's name.
type counters struct {
	allowed, refused atomic.Int64
}

// guard is the stage. It never changes after New; only its counters do.
type guard struct {
	allow  map[uint16]bool
	counts *counters
}

var (
	_ middleware.Middleware  = (*guard)(nil)
	_ middleware.Tunable     = (*guard)(nil)
	_ middleware.StatsSource = (*guard)(nil)
)

// New builds the stage from its chain: entry. It is called on every change
// of the live configuration, so it only decodes, validates and finds its
// shared counters.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := config{Allow: middleware.List[middleware.Port]{80, 443}} // defaults first: Decode keeps what is absent
	if err := p.Decode(&cfg); err != nil {                          // strict: an unknown key or a wrong type names the key
		return nil, err
	}
	if len(cfg.Allow) == 0 {
		return nil, fmt.Errorf("%w: key %q: the list is empty, so every CONNECT would be refused", middleware.ErrBadValue, "allow")
	}
	g := &guard{
		allow:  make(map[uint16]bool, len(cfg.Allow)),
		counts: middleware.Get(p.Shared, p.Name, func() *counters { return new(counters) }),
	}
	for _, port := range cfg.Allow {
		if port == 0 {
			return nil, fmt.Errorf("%w: key %q: port 0", middleware.ErrBadValue, "allow")
		}
		g.allow[uint16(port)] = true
	}
	return g, nil
}

// Wrap installs the guard on the session's dialer before next: the engine
// dials through it once per CONNECT.
func (g *guard) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Dialer = &dialer{next: s.Dialer, g: g}
		return next.ServeConn(ctx, s)
	})
}

// Settings lists the live setting, sorted. The kit's List prints it in
// the form CONFIG reads back: [80, 443].
func (g *guard) Settings() []middleware.Setting {
	var ports middleware.List[middleware.Port]
	for _, port := range slices.Sorted(maps.Keys(g.allow)) {
		ports = append(ports, middleware.Port(port))
	}
	return []middleware.Setting{{
		Key:   "allow",
		Value: ports.String(),
		Help:  "destination ports CONNECT may reach",
	}}
}

// Stats gives STATS its lines; the keys start with the stage's type, so
// they never meet another stage's.
func (g *guard) Stats() []middleware.Stat {
	return []middleware.Stat{
		{Key: "portguard_allowed", Value: g.counts.allowed.Load()},
		{Key: "portguard_refused", Value: g.counts.refused.Load()},
	}
}

// dialer refuses a port off the list with the reply the client must get
// (0x02, not allowed by ruleset), and passes every other dial on.
type dialer struct {
	next middleware.Dialer
	g    *guard
}

// DialContext implements middleware.Dialer. address is host:port as the
// client asked, the name unresolved.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("portguard: %w", err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || !d.g.allow[uint16(port)] {
		d.g.counts.refused.Add(1)
		return nil, &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: fmt.Errorf("%w: %s", ErrPortNotAllowed, p)}
	}
	d.g.counts.allowed.Add(1)
	return d.next.DialContext(ctx, network, address)
}
