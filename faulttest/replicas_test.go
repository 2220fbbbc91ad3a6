package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestReplicasConcurrentLogins runs two `ssobroker serve` processes on one
// PostgreSQL database behind a round-robin front (no sticky sessions, one
// issuer) and drives concurrent logins through it. Every SAML response is
// posted to both replicas at once: exactly one may win. Then every code
// must redeem exactly once, a replayed SAML response and a reused
// assertion ID must be rejected whichever replica sees them, and refresh
// tokens must rotate on either replica.
func TestReplicasConcurrentLogins(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + frontLn.Addr().String()
	key := newMasterKey(t)
	var replicas []serveConfig
	for i := range 2 {
		c := newServeConfig(t, dbURL)
		c.issuer, c.masterKey = issuer, key
		replicas = append(replicas, c)
		startServe(t, fmt.Sprintf("replica %d", i), c)
	}
	front := newFront(t, frontLn, replicas)
	s := setupSite(t, issuer, newTestIdP(t))
	pinned := []*http.Client{pinnedClient(t, replicas[0].listen), pinnedClient(t, replicas[1].listen)}

	const workers, perWorker = 4, 10
	var (
		mu       sync.Mutex
		subs     = map[string]string{}
		acsWins  [2]atomic.Int32
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	begun := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				email := fmt.Sprintf("r%d-u%d@acme.com", w, i%3)
				l, tok, winner, err := replicaLogin(ctx, s, pinned, email)
				if err != nil {
					fail("worker %d login %d (%s): %v", w, i, email, err)
					continue
				}
				acsWins[winner].Add(1)
				mu.Lock()
				if prev, ok := subs[email]; ok && prev != tok.idToken.Subject {
					failures = append(failures, fmt.Sprintf("%s: sub %s, earlier %s", email, tok.idToken.Subject, prev))
				}
				subs[email] = tok.idToken.Subject
				mu.Unlock()
				// Refresh on replica 0, then the new token on replica 1:
				// each rotates.
				rt := tok.tok.RefreshToken
				for r, hc := range pinned {
					next, err := s.rp.cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc), &oauth2.Token{RefreshToken: rt}).Token()
					if err != nil || next.RefreshToken == "" || next.RefreshToken == rt {
						fail("%s: refresh on replica %d: %v (rotated: %v)", email, r, err, next != nil && next.RefreshToken != rt)
						break
					}
					rt = next.RefreshToken
				}
				// Redeeming the code again is invalid_grant, and revokes
				// what it granted, whichever replica checks it.
				_, err = l.redeem(ctx)
				var te *tokenError
				if !errors.As(err, &te) || te.re.ErrorCode != "invalid_grant" {
					fail("%s: redeeming a code twice: %v, want invalid_grant", email, err)
				}
				if _, err := s.rp.cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, pinned[i%2]), &oauth2.Token{RefreshToken: rt}).Token(); err == nil {
					fail("%s: a refresh token survived the replay of its code (replica %d)", email, i%2)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d logins on 2 replicas in %s; ACS races won by replica 0: %d, replica 1: %d; requests per replica: %v",
		workers*perWorker, time.Since(begun).Round(time.Millisecond), acsWins[0].Load(), acsWins[1].Load(), front.counts())
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		return
	}
	for route, n := range front.counts() {
		if n[0] == 0 || n[1] == 0 {
			t.Errorf("route %s was served by one replica only (%v): the front did not alternate", route, n)
		}
	}

	t.Run("an assertion ID is accepted once across replicas", func(t *testing.T) {
		assertionID := "_faulttest-" + randomString()
		for r := range 2 {
			b := newBrowser("replay@acme.com")
			b.assertionID = assertionID
			l := s.newLogin(b)
			acs, p, err := b.follow(ctx, step{method: http.MethodGet, url: l.authURL()}, isACS)
			if err != nil || acs == nil {
				t.Fatalf("login to the IdP step: %v", err)
			}
			f, _ := p.forms()
			res, err := postForm(ctx, pinned[r], acs.String(), f[0].fields)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case r == 0 && res.status != http.StatusSeeOther:
				t.Fatalf("first use of assertion %s on replica 0: %d %.300s", assertionID, res.status, res.body)
			case r == 1 && res.status != http.StatusBadRequest:
				t.Errorf("second use of assertion %s (a new AuthnRequest) on replica 1: %d, want 400", assertionID, res.status)
			}
			b.close()
		}
		var events struct {
			Data []struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		s.admin.must(t, "GET", "/api/v1/audit-events?type=login.failed&limit=200&tenant_id="+s.tenantID, nil, http.StatusOK, &events)
		if !slices.ContainsFunc(events.Data, func(e struct {
			Reason string `json:"reason"`
		}) bool {
			return e.Reason == "replayed"
		}) {
			t.Errorf("no login.failed event with reason replayed: %+v", events.Data)
		}
	})
}

// replicaLogin runs one login through the front, posting the SAML
// response to both replicas at once, and returns the login, its tokens
// and which replica won the race. It also replays the SAML response.
func replicaLogin(ctx context.Context, s *site, pinned []*http.Client, email string) (*login, *tokens, int, error) {
	b := newBrowser(email)
	defer b.close()
	l := s.newLogin(b)
	acs, p, err := b.follow(ctx, step{method: http.MethodGet, url: l.authURL()}, isACS)
	if err != nil {
		return nil, nil, 0, err
	}
	if acs == nil {
		return nil, nil, 0, &pageError{p: p}
	}
	forms, err := p.forms()
	if err != nil || len(forms) == 0 {
		return nil, nil, 0, fmt.Errorf("IdP page without a form: %v", err)
	}
	samlForm := forms[0].fields

	var results [2]postResult
	var errs [2]error
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() { results[r], errs[r] = postForm(ctx, pinned[r], acs.String(), samlForm) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, nil, 0, err
	}
	winner := -1
	for r, res := range results {
		switch {
		case res.status == http.StatusSeeOther && strings.Contains(res.location, "/authorize/callback"):
			if winner >= 0 {
				return nil, nil, 0, fmt.Errorf("both replicas accepted one SAML response: %s and %s", results[0].location, results[1].location)
			}
			winner = r
		case res.status != http.StatusBadRequest:
			return nil, nil, 0, fmt.Errorf("replica %d answered the SAML response with %d %.200s, want 303 or 400", r, res.status, res.body)
		}
	}
	if winner < 0 {
		return nil, nil, 0, fmt.Errorf("neither replica accepted the SAML response: %d and %d", results[0].status, results[1].status)
	}
	next, err := acs.Parse(results[winner].location)
	if err != nil {
		return nil, nil, 0, err
	}
	tok, err := l.continueFrom(ctx, step{method: http.MethodGet, url: next.String()})
	if err != nil {
		return nil, nil, 0, err
	}
	// The SAML response again, through the front, is refused.
	again, err := postForm(ctx, b.hc, acs.String(), samlForm)
	if err != nil {
		return nil, nil, 0, err
	}
	if again.status != http.StatusBadRequest || strings.Contains(again.location, "code=") {
		return nil, nil, 0, fmt.Errorf("replayed SAML response: %d Location %q, want 400", again.status, again.location)
	}
	return l, tok, winner, nil
}

func isACS(u *url.URL) bool { return strings.HasSuffix(u.Path, "/acs") }

type postResult struct {
	status   int
	location string
	body     string
}

func postForm(ctx context.Context, hc *http.Client, target string, form url.Values) (postResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return postResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err != nil {
		return postResult{}, fmt.Errorf("POST %s: %w", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return postResult{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b)}, nil
}

// pinnedClient sends every request to addr whatever the URL says, so the
// Host header and URLs stay the issuer's: a load balancer that happened to
// pick this replica.
func pinnedClient(t *testing.T, addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	hc := &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}},
	}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// front is a round-robin reverse proxy that alternates replicas per
// request and preserves Host, like a load balancer without stickiness.
type front struct {
	mu   sync.Mutex
	seen map[string]*[2]int // route class -> requests per replica
}

func newFront(t *testing.T, ln net.Listener, replicas []serveConfig) *front {
	f := &front{seen: map[string]*[2]int{}}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		i := int(next.Add(1) % uint64(len(replicas)))
		pr.SetURL(&url.URL{Scheme: "http", Host: replicas[i].listen})
		pr.Out.Host = pr.In.Host
		f.count(pr.In.URL.Path, i)
	}}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *front) count(path string, replica int) {
	route := "other"
	switch {
	case path == "/authorize", path == "/authorize/callback", path == "/login", path == "/oauth/token":
		route = path
	case strings.HasSuffix(path, "/acs"):
		route = "acs"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[route] == nil {
		f.seen[route] = &[2]int{}
	}
	f.seen[route][replica]++
}

func (f *front) counts() map[string][2]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][2]int{}
	for k, v := range f.seen {
		out[k] = *v
	}
	return out
}
