package limits

import (
	"context"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestAutomaticMaxFormula(t *testing.T) {
	tests := []struct {
		soft uint64
		want int
	}{
		{0, 1}, {10, 1}, {64, 1}, {65, 1}, {66, 1}, {67, 1}, {68, 2},
		{1024, 480}, {4096, 2016}, {65536, 32736}, {1 << 20, 524256},
		{math.MaxUint64, math.MaxInt32}, // RLIM_INFINITY
	}
	for _, tt := range tests {
		if got := automaticMax(tt.soft); got != tt.want {
			t.Errorf("automaticMax(%d) = %d, want %d", tt.soft, got, tt.want)
		}
	}
	want := FallbackMax
	if soft, ok := openFileLimit(); ok {
		want = automaticMax(soft)
	}
	if got := AutomaticMax(); got != want {
		t.Errorf("AutomaticMax = %d, want %d", got, want)
	}
}

// TestMapsShrink: the per-address and per-user maps lose their entries when
// the last connection of a key ends.
func TestMapsShrink(t *testing.T) {
	p := mwtest.Params("limits", map[string]any{"per_ip": 5, "per_user": 5})
	mw := mwtest.New(t, Type, p)
	st := middleware.Get(p.Shared, p.Name, newState)
	var during [2]int
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.User = "alice"
		if err := admit(s); err != nil {
			t.Errorf("admit: %v", err)
		}
		_, ips := st.byIP.held(netip.Addr{})
		alice, _ := st.byUser.held("alice")
		during = [2]int{ips, alice}
	}}
	for i := range 3 {
		s, _ := mwtest.Session(t)
		s.Client = netip.AddrPortFrom(netip.MustParseAddr("10.1.2.3"), uint16(1000+i))
		s.Dialer = pipeDialer{}
		if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
			t.Fatal(err)
		}
		if during != [2]int{1, 1} {
			t.Errorf("during session %d: byIP has %d keys, alice holds %d places", i, during[0], during[1])
		}
	}
	_, ips := st.byIP.held(netip.Addr{})
	_, users := st.byUser.held("")
	if ips != 0 || users != 0 || st.total.Load() != 0 {
		t.Errorf("after all sessions: %d addresses, %d users hold places, total %d", ips, users, st.total.Load())
	}
}

// TestPanicGivesPlacesBack: a panic in the rest of the chain (recovered by
// the engine) still gives back every place the session took.
func TestPanicGivesPlacesBack(t *testing.T) {
	p := mwtest.Params("limits", map[string]any{"max_connections": 1, "per_ip": 1, "per_user": 1})
	mw := mwtest.New(t, Type, p)
	st := middleware.Get(p.Shared, p.Name, newState)
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.User = "alice"
		if err := admit(s); err != nil {
			t.Errorf("admit: %v", err)
		}
		panic("boom")
	}}
	s, _ := mwtest.Session(t)
	s.Dialer = pipeDialer{}
	func() {
		defer func() { _ = recover() }()
		_ = mwtest.Serve(context.Background(), mw, tm, s)
	}()
	_, ips := st.byIP.held(netip.Addr{})
	_, users := st.byUser.held("")
	if ips != 0 || users != 0 || st.total.Load() != 0 {
		t.Errorf("after a panic: %d addresses, %d users hold places, total %d", ips, users, st.total.Load())
	}
}

func TestLogGate(t *testing.T) {
	var g logGate
	t0 := time.Unix(1_000_000, 0)
	if ok, n := g.allow(t0); !ok || n != 0 {
		t.Fatalf("first = %v, %d; want a line", ok, n)
	}
	for i := range 5 {
		if ok, _ := g.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("call %d within the second let a line through", i)
		}
	}
	if ok, n := g.allow(t0.Add(logInterval)); !ok || n != 5 {
		t.Fatalf("after a second = %v, %d; want a line reporting 5 unlogged", ok, n)
	}
	if ok, _ := g.allow(t0.Add(logInterval + time.Millisecond)); ok {
		t.Fatal("second line within the next interval")
	}
}

// pipeDialer connects to nothing: the returned conn's peer is closed.
type pipeDialer struct{}

func (pipeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

// admit asks s's admissions, as the engine does once the request is known.
func admit(s *middleware.Session) error {
	for _, a := range s.Admissions {
		if err := a.Admit(context.Background(), s); err != nil {
			return err
		}
	}
	return nil
}
