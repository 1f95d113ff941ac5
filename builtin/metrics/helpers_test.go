package metrics_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socks5d/socks5d/builtin/metrics"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// epoch is the fixed time scripted sessions start at.
var epoch = time.Unix(1_800_000_000, 0)

// run is one scripted session: the facts the terminal handler leaves.
type run struct {
	user     string
	auth     middleware.AuthState
	reply    middleware.Reply
	sent     bool // a reply was sent
	up, down int64
	dur      time.Duration
	dial     bool // serve a CONNECT as the engine does (mwtest.Connect)
}

// ok is a successful session of user moving up and down bytes.
func ok(user string, up, down int64) run {
	return run{user: user, auth: middleware.AuthOK, reply: middleware.ReplySucceeded, sent: true, up: up, down: down, dur: time.Second}
}

// facts plays the engine for r without dialing: it fills the session's
// final facts and ends the session at epoch + r.dur.
func (r run) facts(s *middleware.Session) {
	s.User, s.AuthState = r.user, r.auth
	s.Command = middleware.CmdConnect
	s.Target = middleware.Target{Name: "example.org", Port: 443}
	s.Reply, s.ReplySent = r.reply, r.sent
	s.Up.Add(r.up)
	s.Down.Add(r.down)
	s.Start, s.End = epoch, epoch.Add(r.dur)
}

// terminal returns the engine for r: with dial, mwtest.Connect dials
// through s.Dialer (the reply follows the dial's outcome, as the
// engine's does) and relays r.up and r.down bytes; otherwise the scripted
// facts.
func (r run) terminal() middleware.Handler {
	if !r.dial {
		return &mwtest.Terminal{Facts: r.facts}
	}
	return &mwtest.Connect{
		Target: middleware.Target{Name: "example.org", Port: 443},
		User:   r.user,
		Relay: func(s *middleware.Session, _ net.Conn) error {
			s.Up.Add(r.up)
			s.Down.Add(r.down)
			return nil
		},
	}
}

// serve runs r through mw with dialer as the inner Dialer (nil: a dialer
// that connects at once). A refused dial is an outcome here, not a
// failure of the test.
func serve(t testing.TB, mw middleware.Middleware, dialer middleware.Dialer, r run) {
	t.Helper()
	s, _ := mwtest.Session(t)
	if dialer != nil {
		s.Dialer = dialer
	} else {
		s.Dialer = pipeDialer{}
	}
	var re *middleware.ReplyError
	if err := mwtest.Serve(context.Background(), mw, r.terminal(), s); err != nil && !(r.dial && errors.As(err, &re)) {
		t.Fatal(err)
	}
}

// pipeDialer connects at once to nothing.
type pipeDialer struct{}

func (pipeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

// slowDialer takes delay to connect, or to fail with err.
type slowDialer struct {
	delay time.Duration
	err   error
}

func (d slowDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d.err != nil {
		return nil, d.err
	}
	return pipeDialer{}.DialContext(ctx, network, address)
}

func newStage(t testing.TB, cfg map[string]any) (middleware.Middleware, middleware.Params) {
	t.Helper()
	p := mwtest.Params(metrics.Type, cfg)
	return mwtest.New(t, metrics.Type, p), p
}

func statMap(t testing.TB, mw middleware.Middleware) map[string]int64 {
	t.Helper()
	src, ok := mw.(middleware.StatsSource)
	if !ok {
		t.Fatal("stage does not implement StatsSource")
	}
	return toMap(src.Stats())
}

// userMap returns user's numbers, nil when the stage has none.
func userMap(t testing.TB, mw middleware.Middleware, user string) map[string]int64 {
	t.Helper()
	src, ok := mw.(middleware.UserStatsSource)
	if !ok {
		t.Fatal("stage does not implement UserStatsSource")
	}
	st, found := src.UserStats(user)
	if !found {
		return nil
	}
	return toMap(st)
}

func toMap(st []middleware.Stat) map[string]int64 {
	m := make(map[string]int64, len(st))
	for _, s := range st {
		m[s.Key] = s.Value
	}
	return m
}

func keys(st []middleware.Stat) string {
	k := make([]string, len(st))
	for i, s := range st {
		k[i] = s.Key
	}
	return strings.Join(k, ",")
}

func collector(t testing.TB, mw middleware.Middleware) prometheus.Collector {
	t.Helper()
	c, ok := mw.(prometheus.Collector)
	if !ok {
		t.Fatal("stage does not implement prometheus.Collector")
	}
	return c
}

// gather collects mw through a pedantic registry and returns every sample
// keyed name{label="value",...} (labels in the registry's order, sorted
// by name); a histogram gives name_count and name_sum.
func gather(t testing.TB, mw middleware.Middleware) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(collector(t, mw)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var b strings.Builder
			for i, lp := range m.GetLabel() {
				if i == 0 {
					b.WriteByte('{')
				} else {
					b.WriteByte(',')
				}
				b.WriteString(lp.GetName() + `="` + lp.GetValue() + `"`)
			}
			if b.Len() > 0 {
				b.WriteByte('}')
			}
			labels := b.String()
			switch {
			case m.Counter != nil:
				out[mf.GetName()+labels] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[mf.GetName()+labels] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}
