package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// fakeClock is a clock that moves only when a fake dialer "takes time".
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// clockDialer takes delay on the fake clock, then connects or fails.
type clockDialer struct {
	clock *fakeClock
	delay time.Duration
	fail  bool
}

func (d clockDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	d.clock.advance(d.delay)
	if d.fail {
		return nil, &middleware.ReplyError{Code: middleware.ReplyHostUnreachable, Err: errors.New("no route")}
	}
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

// newClocked builds a stage whose dials are timed on a fake clock.
func newClocked(t *testing.T, cfg map[string]any) (*stage, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	st := mwtest.New(t, Type, mwtest.Params(Type, cfg)).(*stage)
	st.now = clock.now // before the stage serves anything
	return st, clock
}

func dialOnce(t *testing.T, st *stage, d clockDialer) {
	t.Helper()
	s, _ := mwtest.Session(t)
	s.Dialer = d
	tm := &mwtest.Connect{Target: middleware.Target{Name: "example.org", Port: 443}}
	err := mwtest.Serve(context.Background(), st, tm, s)
	if d.fail != (err != nil) {
		t.Fatalf("dial failing %v: err = %v", d.fail, err)
	}
}

func TestLatencyBuckets(t *testing.T) {
	st, clock := newClocked(t, nil)
	for _, d := range []time.Duration{
		500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond,
		40 * time.Millisecond, 2 * time.Second, 20 * time.Second,
	} {
		dialOnce(t, st, clockDialer{clock: clock, delay: d})
	}
	dialOnce(t, st, clockDialer{clock: clock, delay: 7 * time.Millisecond, fail: true}) // not timed

	hs := st.latency.snapshot()
	want := []uint64{1, 0, 2, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1}
	if len(hs.counts) != len(want) {
		t.Fatalf("%d buckets, want %d", len(hs.counts), len(want))
	}
	for i := range want {
		if hs.counts[i] != want[i] {
			t.Errorf("bucket %d = %d, want %d (all %v)", i, hs.counts[i], want[i], hs.counts)
		}
	}

	stats := map[string]int64{}
	for _, s := range st.Stats() {
		stats[s.Key] = s.Value
	}
	// The median is the 3rd of 6 dials, the last in (2.5ms, 5ms]; the 99th
	// percentile is in +Inf, which gives the highest bound.
	for k, v := range map[string]int64{"connect_latency_ms.count": 6, "connect_latency_ms.p50": 5, "connect_latency_ms.p99": 10_000} {
		if stats[k] != v {
			t.Errorf("%s = %d, want %d", k, stats[k], v)
		}
	}

	const exposition = `
# HELP socks5d_connect_latency_seconds Time to dial the destination, successful dials only.
# TYPE socks5d_connect_latency_seconds histogram
socks5d_connect_latency_seconds_bucket{le="0.001"} 1
socks5d_connect_latency_seconds_bucket{le="0.0025"} 1
socks5d_connect_latency_seconds_bucket{le="0.005"} 3
socks5d_connect_latency_seconds_bucket{le="0.01"} 3
socks5d_connect_latency_seconds_bucket{le="0.025"} 3
socks5d_connect_latency_seconds_bucket{le="0.05"} 4
socks5d_connect_latency_seconds_bucket{le="0.1"} 4
socks5d_connect_latency_seconds_bucket{le="0.25"} 4
socks5d_connect_latency_seconds_bucket{le="0.5"} 4
socks5d_connect_latency_seconds_bucket{le="1"} 4
socks5d_connect_latency_seconds_bucket{le="2.5"} 5
socks5d_connect_latency_seconds_bucket{le="5"} 5
socks5d_connect_latency_seconds_bucket{le="10"} 5
socks5d_connect_latency_seconds_bucket{le="+Inf"} 6
socks5d_connect_latency_seconds_sum 22.0465
socks5d_connect_latency_seconds_count 6
`
	if err := testutil.CollectAndCompare(st, strings.NewReader(exposition), "socks5d_connect_latency_seconds"); err != nil {
		t.Error(err)
	}
}

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	h := newHistogram([]time.Duration{10 * ms, 20 * ms, 40 * ms})
	if got := h.snapshot().quantile(0.5); got != 0 {
		t.Errorf("empty: %v, want 0", got)
	}
	for _, d := range []time.Duration{1 * ms, 2 * ms, 3 * ms, 4 * ms, 15 * ms, 15 * ms, 15 * ms, 15 * ms, 30 * ms, 10 * time.Second} {
		h.observe(d)
	}
	hs := h.snapshot()
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.2, 5 * ms},   // rank 2 of 4 in [0, 10ms]
		{0.4, 10 * ms},  // rank 4: the top of the first bucket
		{0.5, 12500000}, // rank 5: 1 of 4 into (10ms, 20ms]
		{0.8, 20 * ms},
		{0.9, 40 * ms},  // rank 9: all of (20ms, 40ms]
		{0.99, 40 * ms}, // +Inf: the highest bound
		{1, 40 * ms},
	}
	for _, tt := range tests {
		if got := hs.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if hs.count != 10 || hs.sum != 10*time.Second+100*ms {
		t.Errorf("count %d sum %v", hs.count, hs.sum)
	}
	// An observation on a bound counts in that bucket (le), a negative one
	// as zero.
	h = newHistogram([]time.Duration{10 * ms})
	h.observe(10 * ms)
	h.observe(-ms)
	if hs := h.snapshot(); hs.counts[0] != 2 || hs.counts[1] != 0 {
		t.Errorf("counts = %v, want [2 0]", hs.counts)
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, 499 * time.Microsecond: 0, 500 * time.Microsecond: 1, 12500 * time.Microsecond: 13, time.Second: 1000} {
		if got := millis(d); got != want {
			t.Errorf("millis(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestLabelOf(t *testing.T) {
	for name, want := range map[string]string{
		"alice":    "alice",
		"zoë":      "zoë",
		"bad\xffx": `"bad\xffx"`,
		"":         "",
	} {
		if got := labelOf(name); got != want {
			t.Errorf("labelOf(%q) = %q, want %q", name, got, want)
		}
	}
}
