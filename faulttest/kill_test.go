package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ssobroker/ssobroker/store/storetest"
)

// TestKill9MidLogins SIGKILLs `ssobroker serve` while logins and admin
// writes are streaming, restarts it on the same database with the same
// settings, and checks security.md (Data): no configuration lost, no
// half-written record, logins in flight complete on a retry or fail
// cleanly, and logins resume (which needs the sealed SP and signing keys
// to open).
func TestKill9MidLogins(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", storetest.SQLiteURL},
		{"postgres", storetest.PostgresURL},
	} {
		t.Run(b.name, func(t *testing.T) { testKill9(t, b.url(t)) })
	}
}

// killRun is what happened before the kill.
type killRun struct {
	mu        sync.Mutex
	subs      map[string]string // email -> sub, from verified ID tokens
	refresh   []string          // refresh tokens issued before the kill
	pending   []*login          // logins with a request in flight at the kill
	tenants   map[string]string // tenant name -> domain, for every tenant POST sent
	created   map[string]string // tenant id -> name, POST answered 201
	conns     []string          // connection ids, POST answered 201
	ok        atomic.Int32
	killNow   chan struct{}
	killOnce  sync.Once
	killAfter int32
}

func testKill9(t *testing.T, dbURL string) {
	start := time.Now()
	cfg := newServeConfig(t, dbURL)
	p := startServe(t, "serve", cfg)
	idp := newTestIdP(t)
	s := setupSite(t, cfg.issuer, idp)
	// Signed AuthnRequests: every login then uses the connection's sealed
	// SP key, and the IdP checks the signature.
	s.admin.must(t, "PATCH", "/api/v1/connections/"+s.connID, map[string]any{"sign_authn_requests": true}, http.StatusOK, nil)
	s.registerSP(t, s.connID)
	before := snapshot(t, s)

	run := &killRun{subs: map[string]string{}, tenants: map[string]string{}, created: map[string]string{},
		killNow: make(chan struct{}), killAfter: 12}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	const workers = 4
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // no worker outlives the test, even when it fails early
	}()
	for w := range workers {
		wg.Go(func() { run.loginWorker(ctx, t, s, w) })
	}
	wg.Go(func() { run.adminWorker(ctx, t, s) })

	select {
	case <-run.killNow:
	case <-ctx.Done():
		t.Fatalf("only %d logins succeeded before the deadline; want %d before the kill", run.ok.Load(), run.killAfter)
	}
	p.kill9()
	killedAt := time.Now()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed after %d logins (%d distinct users) and %d tenants created; in flight: %s",
		run.ok.Load(), len(run.subs), len(run.created), pendingSteps(run.pending))
	if errs := p.serverErrors(); len(errs) > 0 {
		t.Errorf("the broker answered %d requests with 5xx before the kill:\n%s", len(errs), strings.Join(errs, "\n"))
	}

	p2 := startServe(t, "serve after SIGKILL", cfg)
	t.Logf("restarted %s after the kill", time.Since(killedAt).Round(time.Millisecond))

	t.Run("configuration intact", func(t *testing.T) {
		after := snapshot(t, s)
		for path, want := range before {
			if !reflect.DeepEqual(after[path], want) {
				t.Errorf("GET %s changed across the kill:\nbefore %v\nafter  %v", path, want, after[path])
			}
		}
	})

	t.Run("no half-written tenant or connection", func(t *testing.T) {
		var list struct {
			Data []struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				Domains []struct {
					Domain string `json:"domain"`
				} `json:"domains"`
			} `json:"data"`
		}
		s.admin.must(t, "GET", "/api/v1/tenants?limit=200", nil, http.StatusOK, &list)
		listed := map[string]bool{}
		for _, tn := range list.Data {
			listed[tn.ID] = true
			want, ok := run.tenants[tn.Name]
			if tn.ID == s.tenantID {
				want, ok = "acme.com", true
			}
			if !ok {
				t.Errorf("tenant %s %q was never created by this test", tn.ID, tn.Name)
				continue
			}
			if len(tn.Domains) != 1 || tn.Domains[0].Domain != want {
				t.Errorf("tenant %s %q has domains %v, want exactly [%s] (created in one request)", tn.ID, tn.Name, tn.Domains, want)
			}
			var conns struct {
				Data []struct {
					ID         string `json:"id"`
					TenantID   string `json:"tenant_id"`
					SPEntityID string `json:"sp_entity_id"`
					ACSURL     string `json:"acs_url"`
				} `json:"data"`
			}
			s.admin.must(t, "GET", "/api/v1/tenants/"+tn.ID+"/connections?limit=200", nil, http.StatusOK, &conns)
			for _, c := range conns.Data {
				if c.TenantID != tn.ID || c.SPEntityID == "" || c.ACSURL == "" {
					t.Errorf("connection %+v of tenant %s is incomplete", c, tn.ID)
				}
				// Serving SP metadata unseals the connection's private key.
				if st, err := httpStatus(t.Context(), http.DefaultClient, s.issuer+"/saml/"+c.ID+"/metadata"); err != nil || st != http.StatusOK {
					t.Errorf("SP metadata of connection %s after the kill: %d %v", c.ID, st, err)
				}
			}
		}
		for id, name := range run.created {
			if !listed[id] {
				t.Errorf("tenant %s %q was created (201) before the kill and is gone", id, name)
			}
		}
		for _, id := range run.conns {
			s.admin.must(t, "GET", "/api/v1/connections/"+id, nil, http.StatusOK, nil)
		}
	})

	t.Run("identities intact", func(t *testing.T) {
		ids := s.identities(t, s.tenantID)
		bySub := map[string]identity{}
		for _, id := range ids {
			bySub[id.Sub] = id
			if id.TenantID != s.tenantID || id.ConnectionID != s.connID || !strings.HasSuffix(id.Email, "@acme.com") ||
				id.Status != "active" || id.CreatedAt.IsZero() {
				t.Errorf("half-written identity: %+v", id)
			}
		}
		for email, sub := range run.subs {
			id, ok := bySub[sub]
			if !ok {
				t.Errorf("identity %s (%s) signed in before the kill and is gone", sub, email)
				continue
			}
			if id.Email != email {
				t.Errorf("identity %s has email %q, want %q", sub, id.Email, email)
			}
			var one identity
			s.admin.must(t, "GET", "/api/v1/identities/"+sub, nil, http.StatusOK, &one)
			if one.TenantID != s.tenantID {
				t.Errorf("GET identity %s: tenant %q, want %q", sub, one.TenantID, s.tenantID)
			}
		}
		if len(ids) > 3*workers {
			t.Errorf("%d identities for at most %d distinct users", len(ids), 3*workers)
		}
	})

	t.Run("logins in flight complete or fail cleanly", func(t *testing.T) {
		for _, l := range run.pending {
			what := pendingSteps([]*login{l})
			tok, err := l.resume(t.Context())
			switch {
			case err == nil:
				if want, seen := run.subs[l.b.email]; seen && want != tok.idToken.Subject {
					t.Errorf("resumed login (%s) of %s got sub %s, want %s", what, l.b.email, tok.idToken.Subject, want)
				}
				t.Logf("in flight at %s: completed on retry", what)
			case cleanFailure(err):
				t.Logf("in flight at %s: failed cleanly on retry (%v)", what, shortErr(err))
				// An error page that offers "Try again" must mean it.
				var pe *pageError
				if errors.As(err, &pe) {
					if m := retryLink.FindStringSubmatch(pe.p.Body); m != nil {
						u, _ := pe.p.URL.Parse(html.UnescapeString(m[1]))
						if _, err := l.continueFrom(t.Context(), step{method: http.MethodGet, url: u.String()}); err != nil {
							t.Errorf("in flight at %s: the error page's Try again link failed: %v", what, err)
						} else {
							t.Logf("in flight at %s: its Try again link completed the login", what)
						}
					}
				}
			default:
				t.Errorf("in flight at %s: retry neither completed nor failed cleanly: %v", what, err)
			}
		}
	})

	var events struct {
		Data []struct {
			Reason string `json:"reason"`
		} `json:"data"`
	}
	s.admin.must(t, "GET", "/api/v1/audit-events?type=login.failed&limit=200&tenant_id="+s.tenantID, nil, http.StatusOK, &events)
	if len(events.Data) > 0 {
		t.Logf("login.failed events: %+v", events.Data)
	}

	t.Run("tokens issued before the kill still refresh", func(t *testing.T) {
		for _, rt := range run.refresh[:min(3, len(run.refresh))] {
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, s.rp.hc)
			if _, err := s.rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token(); err != nil {
				t.Errorf("refresh with a token issued before the kill: %v", err)
			}
		}
	})

	t.Run("logins resume", func(t *testing.T) {
		signedBefore := idp.signed.Load()
		defer func() {
			if idp.signed.Load() == signedBefore {
				t.Error("no signed AuthnRequest after the restart: the sealed SP key was not exercised")
			}
		}()
		// Every worker's users again: known users keep their sub, which
		// also proves the connection's sealed SP key opens.
		for w := range workers {
			for i := range 2 {
				email := fmt.Sprintf("w%d-u%d@acme.com", w, i)
				b := newBrowser(email)
				tok, err := s.newLogin(b).run(t.Context())
				b.close()
				if err != nil {
					t.Fatalf("login of %s after the restart: %v", email, err)
				}
				if want, seen := run.subs[email]; seen && want != tok.idToken.Subject {
					t.Errorf("%s signed in as %s after the restart, %s before", email, tok.idToken.Subject, want)
				}
			}
		}
	})
	if errs := p2.serverErrors(); len(errs) > 0 {
		t.Errorf("the restarted broker answered %d requests with 5xx:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	t.Logf("whole run %s", time.Since(start).Round(time.Millisecond))
}

var retryLink = regexp.MustCompile(`href="(/login\?id=[^"]+)"`)

// loginWorker signs users in until a request gets no response (the kill).
func (r *killRun) loginWorker(ctx context.Context, t *testing.T, s *site, w int) {
	for i := 0; ctx.Err() == nil; i++ {
		b := newBrowser(fmt.Sprintf("w%d-u%d@acme.com", w, i%3))
		l := s.newLogin(b)
		tok, err := l.run(ctx)
		switch {
		case err == nil:
			r.mu.Lock()
			if prev, ok := r.subs[b.email]; ok && prev != tok.idToken.Subject {
				t.Errorf("%s got sub %s, earlier %s", b.email, tok.idToken.Subject, prev)
			}
			r.subs[b.email] = tok.idToken.Subject
			r.refresh = append(r.refresh, tok.tok.RefreshToken)
			r.mu.Unlock()
			if r.ok.Add(1) >= r.killAfter {
				r.killOnce.Do(func() { close(r.killNow) })
			}
		case isTransport(err) && ctx.Err() == nil:
			r.mu.Lock()
			r.pending = append(r.pending, l)
			r.mu.Unlock()
			return
		default:
			if ctx.Err() == nil {
				t.Errorf("worker %d: login %d of %s before the kill: %v", w, i, b.email, err)
			}
			return
		}
	}
}

// adminWorker creates tenants, each with a domain and a connection, until
// a request gets no response.
func (r *killRun) adminWorker(ctx context.Context, t *testing.T, s *site) {
	for i := 0; ctx.Err() == nil; i++ {
		name, domain := fmt.Sprintf("Org %d", i), fmt.Sprintf("org%d.example.com", i)
		r.mu.Lock()
		r.tenants[name] = domain
		r.mu.Unlock()
		var tn idJSON
		status, raw, err := s.admin.call(ctx, "POST", "/api/v1/tenants", map[string]any{"name": name, "domains": []string{domain}}, &tn)
		if err != nil || status != http.StatusCreated {
			if err == nil && ctx.Err() == nil {
				t.Errorf("creating tenant %s before the kill: %d %.300s", name, status, raw)
			}
			return
		}
		r.mu.Lock()
		r.created[tn.ID] = name
		r.mu.Unlock()
		var cn idJSON
		status, raw, err = s.admin.call(ctx, "POST", "/api/v1/tenants/"+tn.ID+"/connections", map[string]any{
			"name": name + " IdP", "preset": "okta", "idp_metadata_xml": string(s.idp.sim.Metadata()),
		}, &cn)
		if err != nil || status != http.StatusCreated {
			if err == nil && ctx.Err() == nil {
				t.Errorf("creating a connection for %s before the kill: %d %.300s", name, status, raw)
			}
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, cn.ID)
		r.mu.Unlock()
	}
}

// snapshot reads the site's configuration through the admin API.
func snapshot(t *testing.T, s *site) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, path := range []string{"/api/v1/tenants/" + s.tenantID, "/api/v1/connections/" + s.connID, "/api/v1/clients/" + s.clientID} {
		raw := s.admin.must(t, "GET", path, nil, http.StatusOK, nil)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		out[path] = v
	}
	return out
}

// pendingSteps names the requests that were in flight, without their
// query strings.
func pendingSteps(ls []*login) string {
	var out []string
	for _, l := range ls {
		switch {
		case l.tokenPending:
			out = append(out, "POST /oauth/token")
		case l.pending != nil:
			path := l.pending.url
			if u, err := url.Parse(path); err == nil {
				path = u.Path
			}
			out = append(out, l.pending.method+" "+path)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func shortErr(err error) string {
	var pe *pageError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%d at %s", pe.p.Status, pe.p.URL.Path)
	}
	return err.Error()
}
