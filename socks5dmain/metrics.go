package socks5dmain

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socks5d/socks5d/core"
)

// liveStages collects, at each scrape, from the stages of the live
// snapshot that are Prometheus collectors (the chain changes at run time,
// so nothing is registered per stage), and exports every STATS line as
// socks5d_stat{key="..."}: the numbers PCTP shows, read from the same
// counters at the same moment.
type liveStages struct{ rt *core.Runtime }

var statDesc = prometheus.NewDesc("socks5d_stat", "Every PCTP STATS line, by key, read from the same counters.", []string{"key"}, nil)

// Describe sends nothing: an unchecked collector, as the set of stages
// can change between scrapes.
func (liveStages) Describe(chan<- *prometheus.Desc) {}

// Collect asks every collector stage of the live chain, then sends the
// STATS lines.
func (l liveStages) Collect(ch chan<- prometheus.Metric) {
	for _, st := range l.rt.Snapshot().Stages {
		if c, ok := st.Middleware.(prometheus.Collector); ok {
			c.Collect(ch)
		}
	}
	// Every key is printed once: the chain's compile refuses duplicates
	// (middleware.StatsSource says how keys are named).
	for _, st := range l.rt.Admin().Stats() {
		ch <- prometheus.MustNewConstMetric(statDesc, prometheus.UntypedValue, float64(st.Value), st.Key)
	}
}

// metricsHandler serves /metrics: the live stages' metrics, the Go
// runtime's and the process's, each labelled instance_name="instance"
// (so that a fleet's series stay apart whatever address Prometheus
// scrapes); and the health checks of load balancers
// and orchestrators: /healthz (200 "ok" while the process answers) and
// /ready (200 "ready" when the server takes new connections, else 503 and
// a one-line reason). With profiles (metrics.pprof), Go's profiles are
// served under /debug/pprof/ too.
func metricsHandler(rt *core.Runtime, instance string, profiles bool) http.Handler {
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWith(prometheus.Labels{"instance_name": instance}, reg).MustRegister(
		liveStages{rt},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := rt.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, strings.TrimPrefix(err.Error(), "core: ")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serveMetrics serves the metrics endpoint on ln until ctx is done,
// labelling every metric with the instance's name.
func serveMetrics(ctx context.Context, ln net.Listener, rt *core.Runtime, instance string, profiles bool) error {
	srv := &http.Server{Handler: metricsHandler(rt, instance, profiles), ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
