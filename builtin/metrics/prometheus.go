package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socks5d/socks5d/middleware"
)

// descs describes the metrics of one stage. They carry a constant label
// stage="<name>" only when the stage is not named after its type, so two
// metrics stages in one chain export distinct series.
type descs struct {
	conns, open, bytes, authFailed, latency, duration *prometheus.Desc
	userBytes, userConns, userFailures, userLastSeen  *prometheus.Desc
	usersTracked                                      *prometheus.Desc
}

func newDescs(name string) *descs {
	var constLabels prometheus.Labels
	if name != Type {
		constLabels = prometheus.Labels{"stage": strings.ToValidUTF8(name, "\uFFFD")}
	}
	d := func(metric, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metric, help, labels, constLabels)
	}
	return &descs{
		conns:        d("socks5d_connections_total", "Connections ended, by the RFC 1928 reply code sent (none: ended before any reply).", "reply"),
		open:         d("socks5d_connections_open", "Connections open now."),
		bytes:        d("socks5d_bytes_total", "Bytes relayed, up (client to destination) and down, open connections included.", "direction"),
		authFailed:   d("socks5d_auth_failures_total", "Connections whose authentication failed."),
		latency:      d("socks5d_connect_latency_seconds", "Time to dial the destination, successful dials only."),
		duration:     d("socks5d_session_duration_seconds", "How long connections lasted, from accept to close."),
		userBytes:    d("socks5d_user_bytes_total", "Bytes relayed per user by ended connections, up and down; users beyond max_users are counted as "+OtherUser+".", "user", "direction"),
		userConns:    d("socks5d_user_connections_total", "Ended connections per user; users beyond max_users are counted as "+OtherUser+".", "user"),
		userFailures: d("socks5d_user_failures_total", "Ended connections per user that did not get reply 0 or failed authentication.", "user"),
		userLastSeen: d("socks5d_user_last_seen_timestamp_seconds", "When a connection of the user last ended, in unix time.", "user"),
		usersTracked: d("socks5d_users_tracked", "Users tracked one by one (at most max_users)."),
	}
}

// Describe implements prometheus.Collector. It sends nothing: the stage is
// an unchecked collector, since its series (users, reply codes) are known
// only when collected and its metrics are read from the live chain at each
// scrape rather than registered once. The server calls Collect on every
// stage of the live chain that is a prometheus.Collector.
func (st *stage) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector. It reads the same counters as
// Stats and UserStats.
func (st *stage) Collect(ch chan<- prometheus.Metric) {
	c, d := st.state, st.desc
	counter := func(desc *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), labels...)
	}

	c.tally.Replies(func(code middleware.Reply, n int64) {
		counter(d.conns, n, strconv.Itoa(int(code)))
	})
	if n := c.tally.NoReply(); n > 0 {
		counter(d.conns, n, "none")
	}
	t := c.tally.Snapshot()
	gauge(d.open, t.Open)
	counter(d.bytes, t.Up, "up")
	counter(d.bytes, t.Down, "down")
	counter(d.authFailed, c.authFailed.Load())
	for _, h := range [...]struct {
		desc *prometheus.Desc
		h    *histogram
	}{{d.latency, st.latency}, {d.duration, c.duration}} {
		hs := h.h.snapshot()
		ch <- prometheus.MustNewConstHistogram(h.desc, hs.count, hs.sum.Seconds(), hs.cumulative())
	}

	for _, e := range c.users.entries() {
		counter(d.userBytes, e.up.Load(), e.label, "up")
		counter(d.userBytes, e.down.Load(), e.label, "down")
		counter(d.userConns, e.conns.Load(), e.label)
		counter(d.userFailures, e.failures.Load(), e.label)
		gauge(d.userLastSeen, e.lastSeen.Load(), e.label)
	}
	gauge(d.usersTracked, int64(c.users.tracked()))
}
