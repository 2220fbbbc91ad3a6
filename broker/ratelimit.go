package broker

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// RateLimits configures the limiter of each surface: at most N requests
// per Window per key. Zero disables a limit.
type RateLimits struct {
	Window         time.Duration
	LoginPerIP     int
	LoginPerTenant int
	ACSPerIP       int
	TokenPerClient int
	TokenPerIP     int
	AdminPerIP     int
	PortalPerIP    int
	MaxTrackedKeys int
}

func (l RateLimits) withDefaults() RateLimits {
	if l.Window == 0 {
		l.Window = time.Minute
	}
	if l.MaxTrackedKeys == 0 {
		l.MaxTrackedKeys = 100_000
	}
	return l
}

// limiter counts requests per key in a sliding window made of the current
// and the previous fixed window, weighted by how much of the previous one
// still overlaps (the approach of Cloudflare's and httprate's limiters):
// O(1) memory per key and no burst of 2N at a window edge.
//
// Counters are per replica: with R replicas a client can make up to R*N
// requests per window. That keeps the hot path free of store round trips;
// docs/operations.md says to divide limits by the replica count.
type limiter struct {
	name   string
	limit  int
	window time.Duration
	clock  tenants.Clock
	max    int

	mu      sync.Mutex
	current map[string]int
	prev    map[string]int
	start   time.Time
}

func newLimiter(name string, limit int, window time.Duration, maxKeys int, clock tenants.Clock) *limiter {
	return &limiter{name: name, limit: limit, window: window, clock: clock, max: maxKeys,
		current: map[string]int{}, prev: map[string]int{}}
}

// allow counts one request for key and reports whether it is within the
// limit; if not, retryAfter says when to come back.
func (l *limiter) allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch elapsed := now.Sub(l.start); {
	case elapsed >= 2*l.window || l.start.IsZero():
		l.prev, l.current = map[string]int{}, map[string]int{}
		l.start = now.Truncate(l.window)
	case elapsed >= l.window:
		l.prev, l.current = l.current, map[string]int{}
		l.start = l.start.Add(l.window)
	}
	overlap := 1 - float64(now.Sub(l.start))/float64(l.window)
	estimate := float64(l.prev[key])*overlap + float64(l.current[key])
	if estimate >= float64(l.limit) {
		// When the estimate falls below the limit as the previous window
		// slides out; at most one window.
		wait := l.window - now.Sub(l.start)
		if l.prev[key] > 0 {
			need := (estimate - float64(l.limit) + 1) / float64(l.prev[key])
			wait = time.Duration(math.Min(need, 1) * float64(l.window))
		}
		return false, max(wait, time.Second)
	}
	if _, tracked := l.current[key]; !tracked && len(l.current) >= l.max {
		// Memory stays bounded under a flood of distinct keys: beyond the
		// cap, new keys share one bucket rather than growing the map.
		key = "overflow"
	}
	l.current[key]++
	return true, 0
}

// ipKey is the rate-limit key of a client address: IPv6 clients are keyed
// by their /64, which one subscriber usually holds whole.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return "ip6:" + p.String()
	}
	return "ip:" + a.Unmap().String()
}

// tooManyRequests writes the 429 response of a limited request.
func tooManyRequests(w http.ResponseWriter, r *http.Request, retryAfter time.Duration, html bool, pg *pages) {
	secs := int(math.Ceil(retryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if html && pg != nil {
		pg.render(w, r, http.StatusTooManyRequests, "error.html", errorPage{
			Title:     "Too many attempts",
			Message:   fmt.Sprintf("Please wait %d seconds and try again.", secs),
			RequestID: requestID(r.Context()),
		}, "")
		return
	}
	writeProblem(w, r, &apiError{Status: http.StatusTooManyRequests, Type: "rate_limited",
		Detail: fmt.Sprintf("too many requests; retry after %d seconds", secs)})
}

// limitByIP refuses requests over l's limit for the client's address.
func (a *App) limitByIP(l *limiter, html bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil || l.limit <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, retry := l.allow(ipKey(clientIP(r))); !ok {
				a.rateLimited(w, r, l, retry, html)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (a *App) rateLimited(w http.ResponseWriter, r *http.Request, l *limiter, retry time.Duration, html bool) {
	a.metrics.rateLimited.WithLabelValues(l.name).Inc()
	a.cfg.Logger.InfoContext(r.Context(), "rate limited", slog.String("limiter", l.name), slog.String("ip", clientIP(r)))
	tooManyRequests(w, r, retry, html, a.pages)
}

// limitToken limits the token endpoint per client (the client id from
// HTTP Basic auth or the form) and per IP. The form is read through a
// bounded reader; the provider reads the same parsed form afterwards.
func (a *App) limitToken(perClient, perIP *limiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, retry := perIP.allow(ipKey(clientIP(r))); !ok {
				a.rateLimited(w, r, perIP, retry, false)
				return
			}
			if r.Method == http.MethodPost {
				clientID, _, ok := r.BasicAuth()
				if !ok {
					r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
					if err := r.ParseForm(); err != nil {
						writeProblem(w, r, badRequest("malformed_form", "the request body is malformed or larger than 64 KiB"))
						return
					}
					clientID = r.PostForm.Get("client_id")
				}
				if ok, retry := perClient.allow("client:" + truncate(clientID, 64)); !ok {
					a.rateLimited(w, r, perClient, retry, false)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
