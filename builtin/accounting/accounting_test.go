package accounting_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/builtin/accounting"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		wantErr error
		errHas  []string
	}{
		{name: "defaults", cfg: nil},
		{name: "empty", cfg: map[string]any{}},
		{name: "unknown key", cfg: map[string]any{"size": 1},
			wantErr: middleware.ErrUnknownKey, errHas: []string{`"size"`, "no settings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok := middleware.Lookup(accounting.Type)
			if !ok {
				t.Fatal("accounting is not registered")
			}
			_, err := info.New(mwtest.Params("accounting", tt.cfg))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New: err = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func stats(t *testing.T, mw middleware.Middleware) []middleware.Stat {
	t.Helper()
	ss, ok := mw.(middleware.StatsSource)
	if !ok {
		t.Fatal("stage does not implement StatsSource")
	}
	return ss.Stats()
}

func statMap(st []middleware.Stat) map[string]int64 {
	m := make(map[string]int64, len(st))
	for _, s := range st {
		m[s.Key] = s.Value
	}
	return m
}

func keys(st []middleware.Stat) []string {
	k := make([]string, len(st))
	for i, s := range st {
		k[i] = s.Key
	}
	return k
}

func TestStatsOrderAndCounts(t *testing.T) {
	mw := mwtest.New(t, accounting.Type, mwtest.Params("accounting", nil))
	got := keys(stats(t, mw))
	want := []string{"current_connections", "total_connections", "current_bytes_proxied", "total_bytes_proxied", "uptime_seconds"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("keys at start = %v, want %v", got, want)
	}

	type run struct {
		reply     middleware.Reply
		replySent bool
		up, down  int64
	}
	runs := []run{
		{middleware.ReplySucceeded, true, 100, 1000},
		{middleware.ReplyConnectionRefused, true, 0, 0},
		{middleware.ReplySucceeded, true, 10, 20},
		{middleware.ReplyNotAllowed, true, 0, 0},
		{0, false, 0, 0}, // handshake failed: no reply sent
		{middleware.ReplyConnectionRefused, true, 0, 0},
	}
	for _, r := range runs {
		s, _ := mwtest.Session(t)
		tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
			s.Reply, s.ReplySent = r.reply, r.replySent
			s.Up.Add(r.up)
			s.Down.Add(r.down)
		}}
		if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
			t.Fatal(err)
		}
	}

	st := stats(t, mw)
	got = keys(st)
	want = append(want, "connections_by_reply.0", "connections_by_reply.2", "connections_by_reply.5")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	m := statMap(st)
	for k, v := range map[string]int64{
		"current_connections":    0,
		"total_connections":      6,
		"current_bytes_proxied":  0,
		"total_bytes_proxied":    1130,
		"connections_by_reply.0": 2,
		"connections_by_reply.2": 1,
		"connections_by_reply.5": 2,
	} {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
	if m["uptime_seconds"] < 0 {
		t.Errorf("uptime_seconds = %d", m["uptime_seconds"])
	}
}

// TestLiveBytes holds a session open in the terminal handler while the
// "relay" moves bytes, and checks that STATS sees them before it ends.
func TestLiveBytes(t *testing.T) {
	mw := mwtest.New(t, accounting.Type, mwtest.Params("accounting", nil))
	moved := make(chan struct{})
	release := make(chan struct{})
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.Reply, s.ReplySent = middleware.ReplySucceeded, true
		s.Up.Add(300)
		s.Down.Add(700)
		close(moved)
		<-release
		s.Down.Add(24)
	}}
	s, _ := mwtest.Session(t)
	done := make(chan error, 1)
	go func() { done <- mwtest.Serve(context.Background(), mw, tm, s) }()

	<-moved
	m := statMap(stats(t, mw))
	if m["current_connections"] != 1 || m["total_connections"] != 1 {
		t.Errorf("connections during transfer: current %d total %d, want 1 1", m["current_connections"], m["total_connections"])
	}
	if m["current_bytes_proxied"] != 1000 || m["total_bytes_proxied"] != 1000 {
		t.Errorf("bytes during transfer: current %d total %d, want 1000 1000", m["current_bytes_proxied"], m["total_bytes_proxied"])
	}
	if _, ok := m["connections_by_reply.0"]; ok {
		t.Error("reply counted before the session ended")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m = statMap(stats(t, mw))
	if m["current_connections"] != 0 || m["current_bytes_proxied"] != 0 || m["total_bytes_proxied"] != 1024 {
		t.Errorf("after: %v", m)
	}
}

func TestSharedAcrossRebuild(t *testing.T) {
	p := mwtest.Params("accounting", nil)
	mw1 := mwtest.New(t, accounting.Type, p)
	s, _ := mwtest.Session(t)
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) { s.Up.Add(5) }}
	if err := mwtest.Serve(context.Background(), mw1, tm, s); err != nil {
		t.Fatal(err)
	}
	mw2 := mwtest.New(t, accounting.Type, p)
	s, _ = mwtest.Session(t)
	if err := mwtest.Serve(context.Background(), mw2, tm, s); err != nil {
		t.Fatal(err)
	}
	for _, mw := range []middleware.Middleware{mw1, mw2} {
		m := statMap(stats(t, mw))
		if m["total_connections"] != 2 || m["total_bytes_proxied"] != 10 {
			t.Errorf("after rebuild: %v, want 2 connections and 10 bytes", m)
		}
	}
	// Another name is another set of counters.
	other := mwtest.New(t, accounting.Type, middleware.Params{Name: "other", Shared: p.Shared})
	if m := statMap(stats(t, other)); m["total_connections"] != 0 {
		t.Errorf("stage named other: %v", m)
	}
}

func TestErrorAndPanicStillAccounted(t *testing.T) {
	mw := mwtest.New(t, accounting.Type, mwtest.Params("accounting", nil))
	want := errors.New("dial failed")
	s, _ := mwtest.Session(t)
	tm := &mwtest.Terminal{Err: want, Facts: func(s *middleware.Session) {
		s.Reply, s.ReplySent = middleware.ReplyHostUnreachable, true
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); !errors.Is(err, want) {
		t.Fatalf("Serve = %v, want %v", err, want)
	}

	func() {
		defer func() { _ = recover() }()
		s, _ := mwtest.Session(t)
		_ = mwtest.Serve(context.Background(), mw, &mwtest.Terminal{Facts: func(*middleware.Session) { panic("boom") }}, s)
	}()

	m := statMap(stats(t, mw))
	if m["current_connections"] != 0 || m["total_connections"] != 2 || m["connections_by_reply.4"] != 1 {
		t.Errorf("stats = %v", m)
	}
}

func TestConcurrent(t *testing.T) {
	mw := mwtest.New(t, accounting.Type, mwtest.Params("accounting", nil))
	h := mw.Wrap(&mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.Reply, s.ReplySent = middleware.ReplySucceeded, true
		for range 10 {
			s.Up.Add(1)
			s.Down.Add(2)
		}
	}})
	const n = 64
	sessions := make([]*middleware.Session, n)
	for i := range sessions {
		sessions[i], _ = mwtest.Session(t)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // a STATS reader racing with traffic
		for range 10000 {
			select {
			case <-stop:
				return
			default:
			}
			m := statMap(stats(t, mw))
			if m["current_connections"] > m["total_connections"] || m["current_bytes_proxied"] > m["total_bytes_proxied"] {
				t.Errorf("inconsistent stats: %v", m)
				return
			}
		}
	})
	var workers sync.WaitGroup
	for _, s := range sessions {
		workers.Go(func() {
			if err := h.ServeConn(context.Background(), s); err != nil {
				t.Error(err)
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	m := statMap(stats(t, mw))
	if m["total_connections"] != n || m["total_bytes_proxied"] != n*30 || m["connections_by_reply.0"] != n || m["current_connections"] != 0 {
		t.Errorf("stats = %v", m)
	}
}
