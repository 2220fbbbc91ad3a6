package broker

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the broker's Prometheus series, on a registry of their own
// (no package-global default registry). Labels are bounded: route
// patterns, never raw paths; reasons from closed sets.
type metrics struct {
	registry    *prometheus.Registry
	logins      *prometheus.CounterVec
	requests    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	jobRuns     *prometheus.CounterVec
}

// newMetrics registers the series. keyActiveSince, when not nil, reports
// the activation time of the signing key in use (read at scrape time).
func newMetrics(keyActiveSince func(context.Context) (time.Time, error)) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssobroker_logins_total",
		Help: "Completed SAML logins by outcome (succeeded, failed) and rejection reason.",
	}, []string{"outcome", "reason"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ssobroker_http_request_duration_seconds",
		Help:    "Server-side latency per route pattern; the login steps are /authorize, /login, /saml/{connectionID}/acs, /oauth/token and /userinfo.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method", "route", "status"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssobroker_rate_limited_total",
		Help: "Requests refused with 429, by limiter.",
	}, []string{"limiter"})
	m.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ssobroker_job_runs_total",
		Help: "Background job runs on this replica by job and outcome.",
	}, []string{"job", "outcome"})
	m.registry.MustRegister(m.logins, m.requests, m.rateLimited, m.jobRuns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if keyActiveSince != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssobroker_signing_key_active_since_timestamp_seconds",
			Help: "When the OIDC signing key in use became active; alert when it is older than the rotation period.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			t, err := keyActiveSince(ctx)
			if err != nil {
				return 0
			}
			return float64(t.Unix())
		}))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observe records the latency of every request by its route pattern.
func (m *metrics) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := routeLabel(r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	})
}

// routeLabel is the route pattern of a served request, for metrics and
// logs: never the raw path. A route handled by a mounted router (the OIDC
// provider is a chi router of its own) reports that router's pattern.
func routeLabel(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil || len(rc.RoutePatterns) == 0 {
		return "unmatched"
	}
	pats := rc.RoutePatterns
	first := pats[0]
	if strings.HasSuffix(first, "/*") && len(pats) > 1 {
		return strings.TrimSuffix(first, "/*") + pats[len(pats)-1]
	}
	return first
}
