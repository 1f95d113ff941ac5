package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socks5d/socks5d/builtin/metrics"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestCollect(t *testing.T) {
	mw, _ := newStage(t, map[string]any{"max_users": 1, "latency_buckets": []any{"10ms", "1s"}})
	long := ok("alice", 100, 1000)
	long.dur = 2 * time.Hour
	runs := []run{
		long,
		{user: "alice", auth: middleware.AuthOK, reply: middleware.ReplyConnectionRefused, sent: true, dur: 50 * time.Millisecond},
		ok("bob", 10, 20),
		{auth: middleware.AuthFailed, dur: 200 * time.Millisecond},
	}
	for _, r := range runs {
		serve(t, mw, nil, r)
	}
	seen := epoch.Add(time.Second).Unix()
	exposition := fmt.Sprintf(`
# HELP socks5d_auth_failures_total Connections whose authentication failed.
# TYPE socks5d_auth_failures_total counter
socks5d_auth_failures_total 1
# HELP socks5d_bytes_total Bytes relayed, up (client to destination) and down, open connections included.
# TYPE socks5d_bytes_total counter
socks5d_bytes_total{direction="down"} 1020
socks5d_bytes_total{direction="up"} 110
# HELP socks5d_connect_latency_seconds Time to dial the destination, successful dials only.
# TYPE socks5d_connect_latency_seconds histogram
socks5d_connect_latency_seconds_bucket{le="0.01"} 0
socks5d_connect_latency_seconds_bucket{le="1"} 0
socks5d_connect_latency_seconds_bucket{le="+Inf"} 0
socks5d_connect_latency_seconds_sum 0
socks5d_connect_latency_seconds_count 0
# HELP socks5d_connections_open Connections open now.
# TYPE socks5d_connections_open gauge
socks5d_connections_open 0
# HELP socks5d_connections_total Connections ended, by the RFC 1928 reply code sent (none: ended before any reply).
# TYPE socks5d_connections_total counter
socks5d_connections_total{reply="0"} 2
socks5d_connections_total{reply="5"} 1
socks5d_connections_total{reply="none"} 1
# HELP socks5d_session_duration_seconds How long connections lasted, from accept to close.
# TYPE socks5d_session_duration_seconds histogram
socks5d_session_duration_seconds_bucket{le="0.1"} 1
socks5d_session_duration_seconds_bucket{le="0.5"} 2
socks5d_session_duration_seconds_bucket{le="1"} 3
socks5d_session_duration_seconds_bucket{le="5"} 3
socks5d_session_duration_seconds_bucket{le="10"} 3
socks5d_session_duration_seconds_bucket{le="30"} 3
socks5d_session_duration_seconds_bucket{le="60"} 3
socks5d_session_duration_seconds_bucket{le="300"} 3
socks5d_session_duration_seconds_bucket{le="900"} 3
socks5d_session_duration_seconds_bucket{le="1800"} 3
socks5d_session_duration_seconds_bucket{le="3600"} 3
socks5d_session_duration_seconds_bucket{le="10800"} 4
socks5d_session_duration_seconds_bucket{le="21600"} 4
socks5d_session_duration_seconds_bucket{le="43200"} 4
socks5d_session_duration_seconds_bucket{le="86400"} 4
socks5d_session_duration_seconds_bucket{le="+Inf"} 4
socks5d_session_duration_seconds_sum 7201.25
socks5d_session_duration_seconds_count 4
# HELP socks5d_user_bytes_total Bytes relayed per user by ended connections, up and down; users beyond max_users are counted as _other.
# TYPE socks5d_user_bytes_total counter
socks5d_user_bytes_total{direction="down",user="_other"} 20
socks5d_user_bytes_total{direction="down",user="alice"} 1000
socks5d_user_bytes_total{direction="up",user="_other"} 10
socks5d_user_bytes_total{direction="up",user="alice"} 100
# HELP socks5d_user_connections_total Ended connections per user; users beyond max_users are counted as _other.
# TYPE socks5d_user_connections_total counter
socks5d_user_connections_total{user="_other"} 1
socks5d_user_connections_total{user="alice"} 2
# HELP socks5d_user_failures_total Ended connections per user that did not get reply 0 or failed authentication.
# TYPE socks5d_user_failures_total counter
socks5d_user_failures_total{user="_other"} 0
socks5d_user_failures_total{user="alice"} 1
# HELP socks5d_user_last_seen_timestamp_seconds When a connection of the user last ended, in unix time.
# TYPE socks5d_user_last_seen_timestamp_seconds gauge
socks5d_user_last_seen_timestamp_seconds{user="_other"} %d
socks5d_user_last_seen_timestamp_seconds{user="alice"} %d
# HELP socks5d_users_tracked Users tracked one by one (at most max_users).
# TYPE socks5d_users_tracked gauge
socks5d_users_tracked 1
`, seen, epoch.Add(2*time.Hour).Unix())
	if err := testutil.CollectAndCompare(collector(t, mw), strings.NewReader(exposition)); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(collector(t, mw)); n != 20 {
		t.Errorf("CollectAndCount = %d, want 20", n)
	}
}

// TestOneSourceOfTruth checks that STATS, STATS USER and a scrape give the
// same numbers.
func TestOneSourceOfTruth(t *testing.T) {
	mw, _ := newStage(t, map[string]any{"max_users": 2})
	for i, u := range []string{"alice", "bob", "carol", "alice", "dave"} {
		r := ok(u, int64(10*i+1), int64(100*i+7))
		r.dial = true
		if i == 3 {
			r.reply, r.dial = middleware.ReplyHostUnreachable, false
		}
		serve(t, mw, nil, r)
	}
	m, g := statMap(t, mw), gather(t, mw)
	for stat, metric := range map[string]string{
		"bytes_up_total":           `socks5d_bytes_total{direction="up"}`,
		"bytes_down_total":         `socks5d_bytes_total{direction="down"}`,
		"connect_latency_ms.count": "socks5d_connect_latency_seconds_count",
		"users_tracked":            "socks5d_users_tracked",
	} {
		if float64(m[stat]) != g[metric] || m[stat] == 0 {
			t.Errorf("STATS %s = %d, /metrics %s = %v", stat, m[stat], metric, g[metric])
		}
	}
	for _, user := range []string{"alice", "bob", metrics.OtherUser} {
		u := userMap(t, mw, user)
		for stat, metric := range map[string]string{
			"connections":    `socks5d_user_connections_total{user="%s"}`,
			"failures":       `socks5d_user_failures_total{user="%s"}`,
			"bytes_up":       `socks5d_user_bytes_total{direction="up",user="%s"}`,
			"bytes_down":     `socks5d_user_bytes_total{direction="down",user="%s"}`,
			"last_seen_unix": `socks5d_user_last_seen_timestamp_seconds{user="%s"}`,
		} {
			key := fmt.Sprintf(metric, user)
			if v, ok := g[key]; !ok || float64(u[stat]) != v {
				t.Errorf("STATS USER %s %s = %d, /metrics %s = %v", user, stat, u[stat], key, v)
			}
		}
	}
	if userMap(t, mw, "alice")["failures"] != 1 {
		t.Error("alice's failure not counted")
	}
}

func TestDescribeUnchecked(t *testing.T) {
	mw, _ := newStage(t, nil)
	ch := make(chan *prometheus.Desc, 10)
	collector(t, mw).Describe(ch)
	close(ch)
	if n := len(ch); n != 0 {
		t.Errorf("Describe sent %d descriptions, want none (an unchecked collector)", n)
	}
	// So the same stage can be registered once per scrape, or twice in a
	// row after a rebuild, without a registry complaining.
	reg := prometheus.NewRegistry()
	if err := reg.Register(collector(t, mw)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestRenamedStageLabel(t *testing.T) {
	mw := mwtest.New(t, metrics.Type, mwtest.Params("edge", nil))
	serve(t, mw, nil, ok("alice", 1, 2))
	g := gather(t, mw)
	if g[`socks5d_bytes_total{direction="up",stage="edge"}`] != 1 || g[`socks5d_user_connections_total{stage="edge",user="alice"}`] != 1 {
		t.Errorf("metrics of a stage named edge: %v", g)
	}
	// Two metrics stages in one scrape export distinct series.
	other, _ := newStage(t, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector(t, mw), collector(t, other))
	if _, err := reg.Gather(); err != nil {
		t.Errorf("two stages in one scrape: %v", err)
	}
}

// TestInvalidUserName checks that a user name that is not UTF-8 (RFC 1929
// allows any octets) cannot break a scrape.
func TestInvalidUserName(t *testing.T) {
	mw, _ := newStage(t, nil)
	serve(t, mw, nil, ok("bad\xffname", 1, 2))
	serve(t, mw, nil, ok("bad\xfename", 1, 2))
	g := gather(t, mw)
	if g[`socks5d_user_connections_total{user=""bad\xffname""}`] != 1 || g[`socks5d_user_connections_total{user=""bad\xfename""}`] != 1 {
		t.Errorf("metrics = %v", g)
	}
	if u := userMap(t, mw, "bad\xffname"); u["connections"] != 1 {
		t.Errorf("UserStats = %v", u)
	}
}
