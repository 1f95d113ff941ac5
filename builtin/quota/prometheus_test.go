package quota_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socks5d/socks5d/middleware"
)

func TestCollect(t *testing.T) {
	b := newBed(t, &middleware.MemCounters{}, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
		map[string]any{"per_user": 4096, "period": "day"})
	_ = b.session("alice", func(c net.Conn) error { _, err := download(c, 10000); return err })
	_ = b.session("alice", nil) // refused
	exposition := `
# HELP socks5d_quota_limit_bytes Bytes a user may move per quota period.
# TYPE socks5d_quota_limit_bytes gauge
socks5d_quota_limit_bytes 4096
# HELP socks5d_quota_refused_total Requests refused with reply 0x02 because the user had used the quota.
# TYPE socks5d_quota_refused_total counter
socks5d_quota_refused_total 1
# HELP socks5d_quota_used_bytes Bytes a user moved this quota period, both directions (the fleet's, as of the last save).
# TYPE socks5d_quota_used_bytes gauge
socks5d_quota_used_bytes{period="day:2026-12-03",user="alice"} 4096
`
	c := b.mw.(prometheus.Collector)
	if err := testutil.CollectAndCompare(c, strings.NewReader(exposition),
		"socks5d_quota_limit_bytes", "socks5d_quota_refused_total", "socks5d_quota_used_bytes"); err != nil {
		t.Error(err)
	}
}
