package faulttest

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devInfo is what `ssobroker dev` prints once ready.
type devInfo struct {
	adminToken, clientID, clientSecret, tenantID, connectionID string
	ready                                                      time.Duration // from process start to the ready line
}

var devPatterns = map[string]*regexp.Regexp{
	"admin token":   regexp.MustCompile(`Admin token\s+(\S+)`),
	"client_id":     regexp.MustCompile(`client_id=(\S+)`),
	"client_secret": regexp.MustCompile(`client_secret=(\S+)`),
	"tenant":        regexp.MustCompile(`Demo tenant\s+(\S+) owns`),
	"connection":    regexp.MustCompile(`connection (\S+) uses the IdP simulator`),
}

// startDev runs `ssobroker dev` and waits for its ready line.
func startDev(t *testing.T, name, listen, dataDir string) (*proc, devInfo) {
	t.Helper()
	p := startProc(t, name, nil, "dev", "--listen", listen, "--data", dataDir)
	if err := waitFor(func() bool {
		_, ok := p.stdout.seenAt(devReadyLine)
		return ok || !p.running()
	}, 30*time.Second); err != nil {
		t.Fatalf("%s printed no %q line: %v", name, devReadyLine, err)
	}
	at, ok := p.stdout.seenAt(devReadyLine)
	if !ok {
		t.Fatalf("%s exited (%v) before it was ready", name, p.exitErr)
	}
	// The ready line is followed by the rest of the block in the same
	// write; wait for its last line.
	if err := waitFor(func() bool { return strings.Contains(p.stdout.String(), "Try it with curl") }, 5*time.Second); err != nil {
		t.Fatalf("%s: incomplete banner: %q", name, p.stdout.String())
	}
	out := p.stdout.String()
	found := map[string]string{}
	for k, re := range devPatterns {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no %s in its output:\n%s", name, k, out)
		}
		found[k] = m[1]
	}
	return p, devInfo{adminToken: found["admin token"], clientID: found["client_id"], clientSecret: found["client_secret"],
		tenantID: found["tenant"], connectionID: found["connection"], ready: at.Sub(p.started)}
}

// stopDev sends SIGTERM and wants exit code 0.
func stopDev(t *testing.T, p *proc) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if code, err := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("%s: exit code %d (%v) after SIGTERM, want 0", p.name, code, err)
	}
}

// TestDevCommandStartsAndServes runs `ssobroker dev` as a developer
// would: it must print the demo credentials, complete a login through
// the demo app and the built-in IdP simulator, stop cleanly on SIGTERM,
// and keep its tenant and client across a restart (on another port). It
// also measures cold and warm start times (reported, not asserted).
func TestDevCommandStartsAndServes(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	p, first := startDev(t, "dev", addr, data)
	t.Logf("cold start: %s from exec to %q", first.ready.Round(time.Millisecond), devReadyLine)
	base := "http://" + addr

	// The printed admin token works and names what was printed.
	devAdmin(t, base, first.adminToken, "/api/v1/tenants/"+first.tenantID)
	devAdmin(t, base, first.adminToken, "/api/v1/clients/"+first.clientID)
	devAdmin(t, base, first.adminToken, "/api/v1/connections/"+first.connectionID)

	devLogin(t, base)
	stopDev(t, p)

	addr2 := freeAddr(t)
	p2, second := startDev(t, "dev again", addr2, data)
	t.Logf("warm start: %s", second.ready.Round(time.Millisecond))
	if second.clientID != first.clientID || second.tenantID != first.tenantID || second.connectionID != first.connectionID ||
		second.adminToken != first.adminToken || second.clientSecret != first.clientSecret {
		t.Errorf("state did not persist across a restart:\nfirst  %+v\nsecond %+v", redact(first), redact(second))
	}
	devLogin(t, "http://"+addr2)
	stopDev(t, p2)

	t.Run("start times", func(t *testing.T) {
		const n = 5
		var cold, warm []time.Duration
		for range n {
			p, info := startDev(t, "dev cold", freeAddr(t), t.TempDir())
			stopDev(t, p)
			cold = append(cold, info.ready)
		}
		for range n {
			p, info := startDev(t, "dev warm", freeAddr(t), data)
			stopDev(t, p)
			warm = append(warm, info.ready)
		}
		t.Logf("ssobroker dev to ready, median of %d: cold (fresh data dir) %s, warm (existing data dir) %s; cold %v, warm %v",
			n, median(cold).Round(time.Millisecond), median(warm).Round(time.Millisecond), rounded(cold), rounded(warm))
	})
}

// devLogin signs alice in through the demo app: /demo/login, the hosted
// page skipped by login_hint, the simulator's page and its form, the
// auto-post page, the ACS, the callback and the demo app's page.
func devLogin(t *testing.T, base string) {
	t.Helper()
	b := newBrowser("alice@example.com")
	defer b.close()
	var visited []string
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s := step{method: http.MethodGet, url: base + "/demo/login?login_hint=alice@example.com"}
	var final page
	for range 16 {
		visited = append(visited, s.method+" "+pathOf(s.url))
		u, p, err := b.follow(ctx, s, func(*url.URL) bool { return true }) // one request at a time
		if err != nil {
			t.Fatalf("dev login at %s: %v (visited %v)", s, err, visited)
		}
		if u == nil {
			final = p
			break
		}
		forms, _ := p.forms()
		switch {
		case p.Status >= 300 && p.Status < 400:
			s = step{method: http.MethodGet, url: u.String()}
		case len(forms) > 0:
			s = forms[0].step()
		}
	}
	for _, want := range []string{"GET /demo/login", "GET /simulator/sso", "POST /simulator/respond", "/acs", "GET /authorize/callback", "GET /demo/callback"} {
		if !slices.ContainsFunc(visited, func(v string) bool { return strings.Contains(v, want) }) {
			t.Errorf("the dev login did not go through %q: %v", want, visited)
		}
	}
	if final.URL == nil || final.URL.Path != "/demo/callback" || final.Status != http.StatusOK {
		t.Fatalf("dev login ended at %v with %d, want the demo callback page (visited %v): %.500s", final.URL, final.Status, visited, final.Body)
	}
	for _, want := range []string{"Signed in", "alice@example.com", "&#34;email_verified&#34;: true", "&#34;org_id&#34;"} {
		if !strings.Contains(final.Body, want) {
			t.Errorf("the demo callback page lacks %q: %.2000s", want, final.Body)
		}
	}
}

func devAdmin(t *testing.T, base, token, path string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET %s with the printed admin token: %d, want 200", path, res.StatusCode)
	}
}

func pathOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Path
	}
	return raw
}

// redact hides the secrets of d for a log line.
func redact(d devInfo) devInfo {
	d.adminToken, d.clientSecret = "<redacted>", "<redacted>"
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
