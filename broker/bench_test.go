package broker_test

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/storetest"
)

// BenchmarkFullLogin measures one whole login per iteration, in process
// over loopback HTTP: /authorize, the hosted page (GET, then POST with the
// email), the IdP simulator, the ACS, the callback, the code exchange with
// PKCE verified by go-oidc, and /userinfo. ns/op and allocs/op include the
// client side (browser, simulator, RP); the per-step metrics are the
// broker's own server-side time, read from its /metrics histograms.
func BenchmarkFullLogin(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			e := newEnv(b, be, envOptions{})
			e.tenant("Acme", "acme.com")
			c := e.client(nil)
			e.setUser(user("jane@acme.com"), saml.Scenario{})
			before := scrapeRouteTimes(b, e.issuer)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				br := newBrowser(b)
				f := newFlow()
				final := e.signIn(br, c, f, nil, "jane@acme.com")
				e.redeem(c, f, final)
			}
			b.StopTimer()
			after := scrapeRouteTimes(b, e.issuer)
			for _, step := range []struct{ name, key string }{
				{"authorize", "GET /authorize"},
				{"page-GET", "GET /login"},
				{"page-POST", "POST /login"},
				{"acs", "POST /saml/{connectionID}/acs"},
				{"callback", "GET /authorize/callback"},
				{"token", "POST /oauth/token"},
				{"userinfo", "GET /userinfo"},
			} {
				d := after[step.key].sum - before[step.key].sum
				n := after[step.key].count - before[step.key].count
				if n > 0 {
					b.ReportMetric(d/n*1e6, step.name+"-µs")
				}
			}
		})
	}
}

type routeTime struct{ sum, count float64 }

var metricLine = regexp.MustCompile(`^ssobroker_http_request_duration_seconds_(sum|count)\{method="([A-Z]+)",route="([^"]+)",status="\d+"\} ([0-9.e+-]+)$`)

// scrapeRouteTimes reads the total server-side seconds and requests per
// method and route from /metrics.
func scrapeRouteTimes(b *testing.B, issuer string) map[string]routeTime {
	b.Helper()
	res, err := http.Get(issuer + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]routeTime{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[4], 64)
		key := m[2] + " " + m[3]
		rt := out[key]
		if m[1] == "sum" {
			rt.sum += v
		} else {
			rt.count += v
		}
		out[key] = rt
	}
	return out
}
