package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/metrics"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

const defaultBuckets = "[1ms, 2.5ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s]"

func TestConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      map[string]any
		maxUsers string
		buckets  string
		wantErr  []error
		errHas   []string
	}{
		{name: "defaults", cfg: nil, maxUsers: "1000", buckets: defaultBuckets},
		{name: "empty", cfg: map[string]any{}, maxUsers: "1000", buckets: defaultBuckets},
		{name: "max_users", cfg: map[string]any{"max_users": 50}, maxUsers: "50", buckets: defaultBuckets},
		{name: "max_users zero", cfg: map[string]any{"max_users": 0}, maxUsers: "0", buckets: defaultBuckets},
		{name: "buckets", cfg: map[string]any{"latency_buckets": []any{"500us", "20ms", "1s"}}, maxUsers: "1000", buckets: "[500µs, 20ms, 1s]"},
		{name: "one bucket", cfg: map[string]any{"latency_buckets": []any{"1s"}}, maxUsers: "1000", buckets: "[1s]"},
		{name: "negative max_users", cfg: map[string]any{"max_users": -1},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrNegative}, errHas: []string{`"max_users"`, "-1"}},
		{name: "max_users not a number", cfg: map[string]any{"max_users": "many"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"max_users"`}},
		{name: "max_users fraction", cfg: map[string]any{"max_users": 1.5},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"max_users"`}},
		{name: "buckets descending", cfg: map[string]any{"latency_buckets": []any{"10ms", "5ms"}},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrBuckets}, errHas: []string{`"latency_buckets"`, "5ms", "index 1"}},
		{name: "buckets repeated", cfg: map[string]any{"latency_buckets": []any{"10ms", "10ms"}},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrBuckets}, errHas: []string{`"latency_buckets"`, "index 1"}},
		{name: "bucket zero", cfg: map[string]any{"latency_buckets": []any{"0s", "1s"}},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrBuckets}, errHas: []string{`"latency_buckets"`, "index 0"}},
		{name: "buckets empty", cfg: map[string]any{"latency_buckets": []any{}},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrBuckets}, errHas: []string{`"latency_buckets"`, "empty"}},
		{name: "buckets null", cfg: map[string]any{"latency_buckets": nil},
			wantErr: []error{middleware.ErrBadValue, metrics.ErrBuckets}, errHas: []string{`"latency_buckets"`}},
		{name: "bucket not a duration", cfg: map[string]any{"latency_buckets": []any{"fast"}},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"latency_buckets"`, "fast"}},
		{name: "bucket negative", cfg: map[string]any{"latency_buckets": []any{-1}},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"latency_buckets"`}},
		{name: "buckets without a unit", cfg: map[string]any{"latency_buckets": []any{0.01, 0.1, 2}},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"latency_buckets"`, "write 0.01s"}},
		// One item alone, or items in one string (the environment, CONFIG's
		// 1ms,10ms), are a list too.
		{name: "one bucket alone", cfg: map[string]any{"latency_buckets": "1ms"}, maxUsers: "1000", buckets: "[1ms]"},
		{name: "buckets in a string", cfg: map[string]any{"latency_buckets": "1ms, 10ms,1s"}, maxUsers: "1000", buckets: "[1ms, 10ms, 1s]"},
		{name: "buckets a bool", cfg: map[string]any{"latency_buckets": true},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"latency_buckets"`}},
		{name: "bucket in a string not a duration", cfg: map[string]any{"latency_buckets": "1ms,fast"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"latency_buckets"`, "item 2", "fast"}},
		{name: "unknown key", cfg: map[string]any{"max_user": 5},
			wantErr: []error{middleware.ErrUnknownKey}, errHas: []string{`"max_user"`, "latency_buckets, max_users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, metrics.Type, mwtest.Params("metrics", tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tun, ok := mw.(middleware.Tunable)
			if !ok {
				t.Fatal("stage does not implement Tunable")
			}
			st := tun.Settings()
			if len(st) != 2 {
				t.Fatalf("Settings = %+v", st)
			}
			for i, want := range [...][2]string{{"max_users", tt.maxUsers}, {"latency_buckets", tt.buckets}} {
				if st[i].Key != want[0] || st[i].Value != want[1] || st[i].Help == "" {
					t.Errorf("setting %d = %+v, want %s: %s", i, st[i], want[0], want[1])
				}
			}
		})
	}
}

// TestSettingRoundTrip feeds the listed latency_buckets back as PCTP's
// CONFIG would (a YAML flow list decodes to a list of strings).
func TestSettingRoundTrip(t *testing.T) {
	mw, _ := newStage(t, nil)
	v := mw.(middleware.Tunable).Settings()[1].Value
	items := strings.Split(strings.Trim(v, "[]"), ", ")
	list := make([]any, len(items))
	for i, s := range items {
		list[i] = s
	}
	again, _ := newStage(t, map[string]any{"latency_buckets": list})
	if got := again.(middleware.Tunable).Settings()[1].Value; got != v {
		t.Errorf("round trip: %s, want %s", got, v)
	}
}

func TestStatsKeys(t *testing.T) {
	mw, _ := newStage(t, nil)
	src := mw.(middleware.StatsSource)
	want := "connect_latency_ms.p50,connect_latency_ms.p99,connect_latency_ms.count,bytes_up_total,bytes_down_total,users_tracked"
	if got := keys(src.Stats()); got != want {
		t.Errorf("keys = %s, want %s", got, want)
	}
	for k, v := range statMap(t, mw) {
		if v != 0 {
			t.Errorf("%s = %d at start", k, v)
		}
	}
	serve(t, mw, nil, ok("alice", 1, 2))
	st, found := mw.(middleware.UserStatsSource).UserStats("alice")
	if !found {
		t.Fatal("no numbers for alice")
	}
	if got, want := keys(st), "connections,failures,bytes_up,bytes_down,last_seen_unix"; got != want {
		t.Errorf("user keys = %s, want %s", got, want)
	}
}

// TestConnectLatency dials through a fake inner Dialer that takes a known
// time: only successful dials are timed, and each at least as long as the
// dialer took (an upper bound would make the test depend on the machine).
func TestConnectLatency(t *testing.T) {
	mw, _ := newStage(t, map[string]any{"latency_buckets": []any{"1ms", "30ms", "1h"}})
	const slow = 40 * time.Millisecond
	for range 3 {
		serve(t, mw, slowDialer{delay: slow}, run{user: "alice", auth: middleware.AuthOK, dial: true})
	}
	refused := &middleware.ReplyError{Code: middleware.ReplyConnectionRefused}
	serve(t, mw, slowDialer{delay: slow, err: refused}, run{user: "alice", auth: middleware.AuthOK, dial: true})

	m := statMap(t, mw)
	if m["connect_latency_ms.count"] != 3 {
		t.Errorf("connect_latency_ms.count = %d, want 3 (the failed dial is not timed)", m["connect_latency_ms.count"])
	}
	for _, k := range []string{"connect_latency_ms.p50", "connect_latency_ms.p99"} {
		// Every dial is in the (30ms, 1h] bucket: the estimate lies there.
		if m[k] <= 30 {
			t.Errorf("%s = %dms, want above 30ms", k, m[k])
		}
	}
	g := gather(t, mw)
	if g["socks5d_connect_latency_seconds_count"] != 3 || g["socks5d_connect_latency_seconds_sum"] < 3*slow.Seconds() {
		t.Errorf("histogram count %v sum %v, want 3 and at least %v",
			g["socks5d_connect_latency_seconds_count"], g["socks5d_connect_latency_seconds_sum"], 3*slow.Seconds())
	}
	if g[`socks5d_connections_total{reply="5"}`] != 1 || g[`socks5d_connections_total{reply="0"}`] != 3 {
		t.Errorf("connections by reply: %v", g)
	}
	if u := userMap(t, mw, "alice"); u["connections"] != 4 || u["failures"] != 1 {
		t.Errorf("alice = %v, want 4 connections and 1 failure", u)
	}
}

func TestAggregation(t *testing.T) {
	mw, _ := newStage(t, nil)
	runs := []run{
		ok("alice", 100, 1000),
		{user: "alice", auth: middleware.AuthOK, reply: middleware.ReplyConnectionRefused, sent: true},
		ok("bob", 10, 20),
		{auth: middleware.AuthNoAuth, reply: middleware.ReplySucceeded, sent: true, up: 1, down: 2}, // anonymous
		{auth: middleware.AuthFailed},          // bad password: no user, no reply
		{user: "bob", auth: middleware.AuthOK}, // bad request: no reply
		{user: "carol", auth: middleware.AuthOK, reply: middleware.ReplyNotAllowed, sent: true, dur: time.Hour},
	}
	for _, r := range runs {
		serve(t, mw, nil, r)
	}
	m := statMap(t, mw)
	for k, v := range map[string]int64{
		"bytes_up_total": 111, "bytes_down_total": 1022, "users_tracked": 3, "connect_latency_ms.count": 0,
	} {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
	seen := epoch.Add(time.Second).Unix()
	for user, want := range map[string]map[string]int64{
		"alice": {"connections": 2, "failures": 1, "bytes_up": 100, "bytes_down": 1000, "last_seen_unix": seen},
		"bob":   {"connections": 2, "failures": 1, "bytes_up": 10, "bytes_down": 20, "last_seen_unix": seen},
		"carol": {"connections": 1, "failures": 1, "bytes_up": 0, "bytes_down": 0, "last_seen_unix": epoch.Add(time.Hour).Unix()},
	} {
		got := userMap(t, mw, user)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", user, got, want)
		}
	}
	for _, user := range []string{"", "dave", metrics.OtherUser} {
		if got := userMap(t, mw, user); got != nil {
			t.Errorf("UserStats(%q) = %v, want none", user, got)
		}
	}
	g := gather(t, mw)
	for k, v := range map[string]float64{
		`socks5d_connections_total{reply="0"}`:    3,
		`socks5d_connections_total{reply="2"}`:    1,
		`socks5d_connections_total{reply="5"}`:    1,
		`socks5d_connections_total{reply="none"}`: 2,
		`socks5d_auth_failures_total`:             1,
		`socks5d_connections_open`:                0,
		`socks5d_session_duration_seconds_count`:  7,
		`socks5d_session_duration_seconds_sum`:    3600 + 2, // alice's and bob's good sessions last 1s, the others 0
	} {
		if g[k] != v {
			t.Errorf("%s = %v, want %v", k, g[k], v)
		}
	}
}

// TestLastSeenNeverGoesBack ends an older session after a newer one.
func TestLastSeenNeverGoesBack(t *testing.T) {
	mw, _ := newStage(t, nil)
	later := ok("alice", 0, 0)
	later.dur = time.Hour
	serve(t, mw, nil, later)
	serve(t, mw, nil, ok("alice", 0, 0))
	if got, want := userMap(t, mw, "alice")["last_seen_unix"], epoch.Add(time.Hour).Unix(); got != want {
		t.Errorf("last_seen_unix = %d, want %d", got, want)
	}
}

func TestUserCap(t *testing.T) {
	mw, p := newStage(t, map[string]any{"max_users": 2})
	for _, u := range []string{"alice", "bob", "carol", "alice", "dave", "carol", metrics.OtherUser} {
		serve(t, mw, nil, ok(u, 1, 10))
	}
	m := statMap(t, mw)
	if m["users_tracked"] != 2 || m["bytes_up_total"] != 7 || m["bytes_down_total"] != 70 {
		t.Errorf("stats = %v, want 2 users tracked and every byte counted", m)
	}
	if u := userMap(t, mw, "alice"); u["connections"] != 2 || u["bytes_down"] != 20 {
		t.Errorf("alice = %v", u)
	}
	if u := userMap(t, mw, "bob"); u["connections"] != 1 {
		t.Errorf("bob = %v", u)
	}
	for _, user := range []string{"carol", "dave"} {
		if u := userMap(t, mw, user); u != nil {
			t.Errorf("%s tracked beyond the cap: %v", user, u)
		}
	}
	// carol twice, dave, and a user who calls themselves _other.
	if u := userMap(t, mw, metrics.OtherUser); u["connections"] != 4 || u["bytes_up"] != 4 || u["bytes_down"] != 40 {
		t.Errorf("_other = %v", u)
	}

	// Raising the cap makes room for users seen from then on; what was
	// counted under _other stays there.
	mw2 := mwtest.New(t, metrics.Type, withConfig(p, map[string]any{"max_users": 3}))
	serve(t, mw2, nil, ok("dave", 1, 1))
	serve(t, mw2, nil, ok("erin", 1, 1))
	if u := userMap(t, mw2, "dave"); u["connections"] != 1 {
		t.Errorf("dave after raising the cap = %v", u)
	}
	if u := userMap(t, mw2, "erin"); u != nil {
		t.Errorf("erin beyond the raised cap: %v", u)
	}
	if u := userMap(t, mw2, metrics.OtherUser); u["connections"] != 5 {
		t.Errorf("_other = %v, want 5 connections", u)
	}

	// max_users: 0 counts everyone together.
	none, _ := newStage(t, map[string]any{"max_users": 0})
	serve(t, none, nil, ok("alice", 1, 1))
	if userMap(t, none, "alice") != nil || userMap(t, none, metrics.OtherUser)["connections"] != 1 {
		t.Error("max_users 0: alice tracked alone")
	}
}

// TestManyUsers is the cap check: 10,000 distinct users, default cap.
func TestManyUsers(t *testing.T) {
	mw, _ := newStage(t, nil)
	h := mw.Wrap(&mwtest.Terminal{})
	for i := range 10_000 {
		s := &middleware.Session{ID: uint64(i), Start: epoch, Dialer: pipeDialer{},
			User: fmt.Sprintf("user%05d", i), AuthState: middleware.AuthOK, ReplySent: true}
		s.Up.Add(1)
		if err := h.ServeConn(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	m := statMap(t, mw)
	if m["users_tracked"] != metrics.DefaultMaxUsers || m["bytes_up_total"] != 10_000 {
		t.Errorf("stats = %v", m)
	}
	if u := userMap(t, mw, metrics.OtherUser); u["connections"] != 10_000-metrics.DefaultMaxUsers {
		t.Errorf("_other = %v", u)
	}
	g := gather(t, mw)
	if g["socks5d_users_tracked"] != metrics.DefaultMaxUsers {
		t.Errorf("socks5d_users_tracked = %v", g["socks5d_users_tracked"])
	}
	var sum float64
	for k, v := range g {
		if strings.HasPrefix(k, "socks5d_user_connections_total{") {
			sum += v
		}
	}
	if sum != 10_000 {
		t.Errorf("user connections sum to %v, want 10000", sum)
	}
}

func withConfig(p middleware.Params, cfg map[string]any) middleware.Params {
	p.Config = cfg
	return p
}

func TestSharedAcrossRebuild(t *testing.T) {
	p := mwtest.Params("metrics", map[string]any{"latency_buckets": []any{"1h"}})
	mw1 := mwtest.New(t, metrics.Type, p)
	serve(t, mw1, nil, run{user: "alice", auth: middleware.AuthOK, up: 5, down: 50, dial: true})

	mw2, _, err := mwtest.Set(metrics.Type, p, "max_users", "10") // as CONFIG metrics.max_users=10
	if err != nil {
		t.Fatal(err)
	}
	serve(t, mw2, nil, run{user: "alice", auth: middleware.AuthOK, up: 5, down: 50, dial: true})
	for i, mw := range []middleware.Middleware{mw1, mw2} {
		m := statMap(t, mw)
		if m["bytes_up_total"] != 10 || m["bytes_down_total"] != 100 || m["connect_latency_ms.count"] != 2 || m["users_tracked"] != 1 {
			t.Errorf("stage %d after rebuild: %v", i+1, m)
		}
		if u := userMap(t, mw, "alice"); u["connections"] != 2 || u["bytes_down"] != 100 {
			t.Errorf("stage %d: alice = %v", i+1, u)
		}
		if g := gather(t, mw); g[`socks5d_connections_total{reply="0"}`] != 2 {
			t.Errorf("stage %d: socks5d_connections_total = %v", i+1, g[`socks5d_connections_total{reply="0"}`])
		}
	}

	// A new bucket layout starts the latency histogram afresh; the rest
	// keeps counting.
	mw3 := mwtest.New(t, metrics.Type, withConfig(p, map[string]any{"latency_buckets": []any{"1s", "1h"}}))
	if m := statMap(t, mw3); m["connect_latency_ms.count"] != 0 || m["bytes_up_total"] != 10 {
		t.Errorf("new layout: %v", m)
	}

	// Another name is another set of numbers.
	other := mwtest.New(t, metrics.Type, middleware.Params{Name: "other", Shared: p.Shared})
	if m := statMap(t, other); m["bytes_up_total"] != 0 || m["users_tracked"] != 0 {
		t.Errorf("stage named other: %v", m)
	}
}

// TestLiveBytes holds a session open while the "relay" moves bytes:
// totals include them at once, the user's numbers when it ends.
func TestLiveBytes(t *testing.T) {
	mw, _ := newStage(t, nil)
	moved, release := make(chan struct{}), make(chan struct{})
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		s.User, s.AuthState, s.Reply, s.ReplySent = "alice", middleware.AuthOK, middleware.ReplySucceeded, true
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
	m, g := statMap(t, mw), gather(t, mw)
	if m["bytes_up_total"] != 300 || m["bytes_down_total"] != 700 {
		t.Errorf("during transfer: %v", m)
	}
	if g[`socks5d_bytes_total{direction="down"}`] != 700 || g["socks5d_connections_open"] != 1 {
		t.Errorf("during transfer: %v", g)
	}
	if userMap(t, mw, "alice") != nil {
		t.Error("alice counted before her session ended")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := statMap(t, mw); m["bytes_down_total"] != 724 {
		t.Errorf("after: %v", m)
	}
	if u := userMap(t, mw, "alice"); u["bytes_down"] != 724 || u["connections"] != 1 {
		t.Errorf("alice after: %v", u)
	}
}

func TestErrorAndPanicStillRecorded(t *testing.T) {
	mw, _ := newStage(t, nil)
	want := errors.New("dial failed")
	s, _ := mwtest.Session(t)
	tm := &mwtest.Terminal{Err: want, Facts: func(s *middleware.Session) {
		s.User, s.AuthState = "alice", middleware.AuthOK
		s.Reply, s.ReplySent = middleware.ReplyHostUnreachable, true
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); !errors.Is(err, want) {
		t.Fatalf("Serve = %v, want %v", err, want)
	}
	func() {
		defer func() { _ = recover() }()
		s, _ := mwtest.Session(t)
		_ = mwtest.Serve(context.Background(), mw, &mwtest.Terminal{Facts: func(s *middleware.Session) {
			s.Up.Add(7)
			panic("boom")
		}}, s)
	}()
	g := gather(t, mw)
	if g["socks5d_connections_open"] != 0 || g[`socks5d_connections_total{reply="4"}`] != 1 ||
		g[`socks5d_connections_total{reply="none"}`] != 1 || g[`socks5d_bytes_total{direction="up"}`] != 7 {
		t.Errorf("metrics = %v", g)
	}
	if u := userMap(t, mw, "alice"); u["failures"] != 1 {
		t.Errorf("alice = %v", u)
	}
}

// TestDialerWrapped checks the stage passes the dial through unchanged.
func TestDialerWrapped(t *testing.T) {
	mw, _ := newStage(t, nil)
	s, _ := mwtest.Session(t)
	inner := &recordingDialer{}
	s.Dialer = inner
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		if s.Dialer == inner {
			t.Error("dialer not wrapped")
		}
		if _, err := s.Dialer.DialContext(context.Background(), "tcp4", "192.0.2.1:80"); err == nil {
			t.Error("dial did not fail")
		}
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if inner.got != "tcp4 192.0.2.1:80" {
		t.Errorf("inner dialer got %q", inner.got)
	}
}

type recordingDialer struct{ got string }

func (d *recordingDialer) DialContext(_ context.Context, network, address string) (net.Conn, error) {
	d.got = network + " " + address
	return nil, errors.New("no network here")
}

func TestConcurrent(t *testing.T) {
	mw, _ := newStage(t, map[string]any{"max_users": 8})
	h := mw.Wrap(&mwtest.Terminal{Facts: func(s *middleware.Session) {
		conn, err := s.Dialer.DialContext(context.Background(), "tcp", "example.org:443")
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
		s.Reply, s.ReplySent = middleware.ReplySucceeded, true
		for range 10 {
			s.Up.Add(1)
			s.Down.Add(2)
		}
	}})
	const workers, each = 16, 50
	var readers sync.WaitGroup
	stop := make(chan struct{})
	readers.Go(func() { // STATS, STATS USER and scrapes racing with traffic
		var last map[string]int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			m := statMap(t, mw)
			if last != nil && (m["bytes_up_total"] < last["bytes_up_total"] || m["connect_latency_ms.count"] < last["connect_latency_ms.count"]) {
				t.Errorf("counters went back: %v after %v", m, last)
				return
			}
			last = m
			userMap(t, mw, "user3")
			userMap(t, mw, metrics.OtherUser)
			gather(t, mw)
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				s := &middleware.Session{ID: uint64(w*each + i), Start: time.Now(), Dialer: pipeDialer{},
					User: fmt.Sprintf("user%d", (w*each+i)%20), AuthState: middleware.AuthOK}
				if err := h.ServeConn(context.Background(), s); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	const n = workers * each
	m := statMap(t, mw)
	if m["bytes_up_total"] != n*10 || m["bytes_down_total"] != n*20 || m["connect_latency_ms.count"] != n || m["users_tracked"] != 8 {
		t.Errorf("stats = %v", m)
	}
	var conns, up int64
	for u := range 20 {
		um := userMap(t, mw, fmt.Sprintf("user%d", u))
		conns += um["connections"]
		up += um["bytes_up"]
	}
	other := userMap(t, mw, metrics.OtherUser)
	conns += other["connections"]
	up += other["bytes_up"]
	if conns != n || up != n*10 {
		t.Errorf("users sum to %d connections and %d bytes up, want %d and %d", conns, up, n, n*10)
	}
	if g := gather(t, mw); g[`socks5d_connections_total{reply="0"}`] != n || g["socks5d_connections_open"] != 0 {
		t.Errorf("metrics = %v", g)
	}
}
