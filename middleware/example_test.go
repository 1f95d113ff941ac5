package middleware_test

// This file is a complete custom stage, written as a user would write it in
// their own package (say example.com/proxy/portguard), and linked into the
// server by a main of one call (socks5dmain brings the builtin stages):
//
//	import (
//		_ "example.com/proxy/portguard"
//
//		"github.com/socks5d/socks5d/socks5dmain"
//	)
//
//	func main() { socks5dmain.Run() }
//
// examples/portguard in this repository is such a module, built and run by
// socks5dmain's tests, with an allow-list variant of this stage.
//
// It refuses destination ports (configure before next: it wraps the
// Dialer) and counts requests per destination port (observe after next).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// portGuardConfig is the stage's entry in the chain list:
//
//	chain:
//	  - use: portguard
//	    block: [25, 465]   # destination ports refused (default [25])
//
// The kit's value types read every form an operator types (block: 25,
// block: "25,465", CONFIG portguard.block=25,465) and print one CONFIG
// reads back.
type portGuardConfig struct {
	Block middleware.List[middleware.Port] `json:"block"`
}

// errPortBlocked is the sentinel behind a refused dial.
var errPortBlocked = errors.New("portguard: destination port blocked")

// portCounts outlives rebuilds of the chain: it lives in the shared pool
// under the stage's name, and synchronises itself.
type portCounts struct {
	mu      sync.Mutex
	byPort  map[uint16]int64
	refused int64
}

func (c *portCounts) add(port uint16, refused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byPort[port]++
	if refused {
		c.refused++
	}
}

// portGuard is immutable after New; only portCounts changes.
type portGuard struct {
	block  map[uint16]bool
	list   middleware.List[middleware.Port] // as configured, for Settings
	counts *portCounts
}

var (
	_ middleware.Middleware  = (*portGuard)(nil)
	_ middleware.StatsSource = (*portGuard)(nil)
	_ middleware.Tunable     = (*portGuard)(nil)
)

func init() {
	middleware.Register(middleware.Info{
		Type: "portguard",
		New:  newPortGuard,
		Doc:  "refuses destination ports and counts requests per port",
	})
}

// newPortGuard is called on every build of the chain, so it only decodes,
// validates and finds its shared state.
func newPortGuard(p middleware.Params) (middleware.Middleware, error) {
	cfg := portGuardConfig{Block: middleware.List[middleware.Port]{25}} // defaults first
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	g := &portGuard{
		block:  make(map[uint16]bool, len(cfg.Block)),
		list:   cfg.Block,
		counts: middleware.Get(p.Shared, p.Name, func() *portCounts { return &portCounts{byPort: map[uint16]int64{}} }),
	}
	for _, port := range cfg.Block {
		if port == 0 {
			return nil, fmt.Errorf("%w: key %q: port 0", middleware.ErrBadValue, "block")
		}
		g.block[uint16(port)] = true
	}
	return g, nil
}

// Wrap configures before next and observes after it.
func (g *portGuard) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Dialer = &guardedDialer{next: s.Dialer, block: g.block}
		err := next.ServeConn(ctx, s)
		if s.ReplySent && s.Command == middleware.CmdConnect {
			g.counts.add(s.Target.Port, s.Reply == middleware.ReplyNotAllowed)
		}
		return err
	})
}

// Stats implements middleware.StatsSource. The keys are the stage's own
// (prefixed with its type, so they never meet another stage's); under a
// `name:` other than its type, STATS shows them prefixed with that name.
func (g *portGuard) Stats() []middleware.Stat {
	g.counts.mu.Lock()
	defer g.counts.mu.Unlock()
	stats := []middleware.Stat{{Key: "portguard_refused", Value: g.counts.refused}}
	for _, port := range slices.Sorted(maps.Keys(g.counts.byPort)) {
		stats = append(stats, middleware.Stat{
			Key:   "connections_to_port." + strconv.Itoa(int(port)),
			Value: g.counts.byPort[port],
		})
	}
	return stats
}

// Settings implements middleware.Tunable, so PCTP's CONFIG lists it. The
// value is printed as CONFIG reads it back ([25, 465]).
func (g *portGuard) Settings() []middleware.Setting {
	return []middleware.Setting{{Key: "block", Value: g.list.String(), Help: "destination ports refused"}}
}

// guardedDialer refuses blocked ports with the SOCKS reply the client must
// get, and passes every other dial on.
type guardedDialer struct {
	next  middleware.Dialer
	block map[uint16]bool
}

func (d *guardedDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if port, err := strconv.ParseUint(p, 10, 16); err == nil && d.block[uint16(port)] {
		return nil, &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: fmt.Errorf("%w: %s", errPortBlocked, p)}
	}
	return d.next.DialContext(ctx, network, address)
}

// pipeDialer stands in for the network in this example.
type pipeDialer struct{}

func (pipeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

func Example() {
	info, ok := middleware.Lookup("portguard")
	if !ok {
		panic("portguard is not registered")
	}

	// The engine builds the stage from its `chain:` entry; decoding is strict.
	if _, err := info.New(mwtest.Params("portguard", map[string]any{"blok": []any{25}})); err != nil {
		fmt.Println("error:", err)
	}
	p := mwtest.Params("portguard", map[string]any{"block": []any{25, 465}})
	mw, err := info.New(p)
	if err != nil {
		panic(err)
	}
	fmt.Println(mw.(middleware.Tunable).Settings()[0].Value)

	// mwtest.Connect plays the engine after the handshake: it dials the
	// target through s.Dialer, as the engine does, and records the reply
	// the client would get (a stage's ReplyError chooses the code).
	for i, port := range []uint16{443, 25, 80, 443} {
		// What the listener fills in (mwtest.Session needs a testing.TB).
		s := &middleware.Session{ID: uint64(i + 1), Start: time.Now(), Dialer: pipeDialer{}}
		_ = mwtest.Serve(context.Background(), mw, &mwtest.Connect{Target: middleware.Target{Name: "example.org", Port: port}}, s)
		fmt.Printf("%s: %d (%s)\n", s.Target, s.Reply, s.Reply)
	}
	for _, st := range mw.(middleware.StatsSource).Stats() {
		fmt.Printf("%s: %d\n", st.Key, st.Value)
	}

	// A live change, applied as PCTP's CONFIG portguard.block=25,587
	// applies it: the stage is rebuilt, and its counters carry over.
	mw, _, err = mwtest.Set("portguard", p, "block", "25,587")
	if err != nil {
		panic(err)
	}
	refused, _ := mwtest.Stat(mw, "portguard_refused")
	fmt.Println(mw.(middleware.Tunable).Settings()[0].Value, "refused so far:", refused)
	// Output:
	// error: middleware: unknown key "blok" (known: block)
	// [25, 465]
	// example.org:443: 0 (succeeded)
	// example.org:25: 2 (connection not allowed by ruleset)
	// example.org:80: 0 (succeeded)
	// example.org:443: 0 (succeeded)
	// portguard_refused: 1
	// connections_to_port.25: 1
	// connections_to_port.80: 1
	// connections_to_port.443: 2
	// [25, 587] refused so far: 1
}
