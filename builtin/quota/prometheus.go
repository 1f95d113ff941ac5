package quota

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// descs describes the stage's metrics. They carry a constant label
// stage="<name>" only when the stage is not named after its type.
type descs struct {
	used, limit, refused, closed, storeErrors *prometheus.Desc
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
		used:        d("socks5d_quota_used_bytes", "Bytes a user moved this quota period, both directions (the fleet's, as of the last save).", "user", "period"),
		limit:       d("socks5d_quota_limit_bytes", "Bytes a user may move per quota period."),
		refused:     d("socks5d_quota_refused_total", "Requests refused with reply 0x02 because the user had used the quota."),
		closed:      d("socks5d_quota_closed_total", "Open connections closed when their user reached the quota."),
		storeErrors: d("socks5d_quota_store_errors_total", "Failed reads or writes of the quota counts in the state store."),
	}
}

// Describe implements prometheus.Collector. It sends nothing: like the
// metrics stage, an unchecked collector read from the live chain at each
// scrape.
func (st *stage) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector; it reads the counts QUOTA and
// STATS show.
func (st *stage) Collect(ch chan<- prometheus.Metric) {
	d := st.desc
	st.usage.roll(st.period)
	accounts, _, _, id := st.usage.list()
	for _, a := range accounts {
		ch <- prometheus.MustNewConstMetric(d.used, prometheus.GaugeValue, float64(a.used()),
			strings.ToValidUTF8(a.user, "\uFFFD"), id)
	}
	ch <- prometheus.MustNewConstMetric(d.limit, prometheus.GaugeValue, float64(st.limit))
	ch <- prometheus.MustNewConstMetric(d.refused, prometheus.CounterValue, float64(st.usage.refused.Load()))
	ch <- prometheus.MustNewConstMetric(d.closed, prometheus.CounterValue, float64(st.usage.closed.Load()))
	ch <- prometheus.MustNewConstMetric(d.storeErrors, prometheus.CounterValue, float64(st.usage.storeErrors.Load()))
}

var _ prometheus.Collector = (*stage)(nil)
