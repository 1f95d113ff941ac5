package metrics_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socks5d/socks5d/builtin/metrics"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// staticDialer connects at once, always to the same conn, so that the
// benchmark measures the stage and not the fake network.
type staticDialer struct{ conn net.Conn }

func (d staticDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.conn, nil
}

// engine plays the terminal handler without allocating: it dials through
// the stage's Dialer, replies and moves bytes.
var engine = middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
	if _, err := s.Dialer.DialContext(ctx, "tcp", "192.0.2.1:443"); err != nil {
		return err
	}
	s.Reply, s.ReplySent = middleware.ReplySucceeded, true
	s.Up.Add(512)
	s.Down.Add(4096)
	s.End = s.Start.Add(time.Second)
	return nil
})

// reset readies a reused session for its next run, as the listener would
// fill a new one.
func reset(s *middleware.Session, d middleware.Dialer, user string) {
	s.Start, s.End = time.Now(), time.Time{}
	s.Dialer, s.User, s.AuthState = d, user, middleware.AuthOK
	s.Reply, s.ReplySent = 0, false
	s.Up.Store(0)
	s.Down.Store(0)
}

// BenchmarkServe is the stage's cost per connection: the dial wrapper,
// the live set, the counters, the histograms and the user's numbers.
func BenchmarkServe(b *testing.B) {
	mw := mwtest.New(b, metrics.Type, mwtest.Params(metrics.Type, nil))
	h := mw.Wrap(engine)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	var d middleware.Dialer = staticDialer{c1} // boxed once, not per run
	s := &middleware.Session{}
	b.ReportAllocs()
	for b.Loop() {
		reset(s, d, "alice")
		if err := h.ServeConn(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeParallel serves connections of 2,000 users (beyond the
// default cap of 1,000) from every P at once.
func BenchmarkServeParallel(b *testing.B) {
	mw := mwtest.New(b, metrics.Type, mwtest.Params(metrics.Type, nil))
	h := mw.Wrap(engine)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	var d middleware.Dialer = staticDialer{c1}
	users := make([]string, 2000)
	for i := range users {
		users[i] = fmt.Sprintf("user%04d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := &middleware.Session{}
		i := 0
		for pb.Next() {
			reset(s, d, users[i%len(users)])
			i += 7
			if err := h.ServeConn(context.Background(), s); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCollect is the cost of one scrape with 1,000 users tracked.
func BenchmarkCollect(b *testing.B) {
	mw := mwtest.New(b, metrics.Type, mwtest.Params(metrics.Type, nil))
	h := mw.Wrap(engine)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	s := &middleware.Session{}
	for i := range metrics.DefaultMaxUsers + 10 {
		reset(s, staticDialer{c1}, fmt.Sprintf("user%04d", i))
		if err := h.ServeConn(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	c := mw.(prometheus.Collector)
	b.ReportAllocs()
	for b.Loop() {
		ch := make(chan prometheus.Metric, 64)
		go func() {
			c.Collect(ch)
			close(ch)
		}()
		n := 0
		for range ch {
			n++
		}
		if n < 5*metrics.DefaultMaxUsers {
			b.Fatalf("%d metrics", n)
		}
	}
}
