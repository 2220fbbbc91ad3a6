package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPostgresRestartUnderLoad stops the broker's PostgreSQL server under
// a light load and starts it again: /readyz must turn 503 within seconds
// while /healthz stays 200 and no request hangs, then turn 200 again, and
// logins must work again, all without restarting the broker (its pool
// recovers by itself, as docs/operations.md promises).
func TestPostgresRestartUnderLoad(t *testing.T) {
	pg := startPrivatePG(t)
	cfg := newServeConfig(t, pg.url)
	p := startServe(t, "serve", cfg)
	s := setupSite(t, cfg.issuer, newTestIdP(t))
	signIn(t, s, "before@acme.com")

	bg := startLoad(cfg.base())
	defer bg.stop()
	time.Sleep(300 * time.Millisecond)

	stopAt := time.Now()
	pg.stop()
	t.Logf("PostgreSQL stopped (fast) in %s", time.Since(stopAt).Round(time.Millisecond))
	if err := waitStatus(cfg.base()+"/readyz", http.StatusServiceUnavailable, 5*time.Second); err != nil {
		t.Fatalf("with PostgreSQL down: %v", err)
	}
	t.Logf("/readyz answered 503 %s after the stop began", time.Since(stopAt).Round(time.Millisecond))
	if st, err := httpStatus(t.Context(), &http.Client{Timeout: 2 * time.Second}, cfg.base()+"/healthz"); err != nil || st != http.StatusOK {
		t.Errorf("/healthz with PostgreSQL down: %d %v, want 200 (liveness does not depend on the database)", st, err)
	}
	func() {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		b := newBrowser("during@acme.com")
		defer b.close()
		begun := time.Now()
		_, err := s.newLogin(b).run(ctx)
		switch {
		case err == nil:
			t.Error("a login succeeded with PostgreSQL down")
		case isTransport(err):
			t.Errorf("a login with PostgreSQL down got no answer after %s: %v", time.Since(begun).Round(time.Millisecond), err)
		default:
			t.Logf("a login with PostgreSQL down ended after %s: %v", time.Since(begun).Round(time.Millisecond), err)
		}
	}()
	time.Sleep(500 * time.Millisecond)

	startAt := time.Now()
	pg.start()
	t.Logf("PostgreSQL started in %s", time.Since(startAt).Round(time.Millisecond))
	if err := waitStatus(cfg.base()+"/readyz", http.StatusOK, 10*time.Second); err != nil {
		t.Fatalf("after PostgreSQL came back: %v", err)
	}
	t.Logf("/readyz answered 200 %s after PostgreSQL was started", time.Since(startAt).Round(time.Millisecond))
	recovered := time.Now()
	for i := range 3 {
		signIn(t, s, fmt.Sprintf("after%d@acme.com", i))
	}
	signIn(t, s, "before@acme.com")
	time.Sleep(200 * time.Millisecond)
	recs := bg.stop()

	if !p.running() {
		t.Fatal("the broker exited during the database outage")
	}
	var down, slow, dropped, failedAfter []string
	for _, r := range recs {
		switch {
		case r.err != nil:
			dropped = append(dropped, r.String())
		case r.took > 5*time.Second:
			slow = append(slow, r.String())
		}
		if r.at.After(stopAt) && r.at.Before(startAt) && r.status >= 500 {
			down = append(down, r.String())
		}
		if r.at.After(recovered) && r.status != http.StatusOK {
			failedAfter = append(failedAfter, r.String())
		}
	}
	t.Logf("load: %d requests, %d answered 5xx during the outage", len(recs), len(down))
	if len(dropped) > 0 {
		t.Errorf("%d requests got no HTTP answer (the broker must answer while the database is down):\n%s", len(dropped), strings.Join(dropped, "\n"))
	}
	if len(slow) > 0 {
		t.Errorf("%d requests took over 5s:\n%s", len(slow), strings.Join(slow, "\n"))
	}
	if len(down) == 0 {
		t.Error("no request failed while PostgreSQL was down: the load did not reach the database")
	}
	if len(failedAfter) > 0 {
		t.Errorf("requests still failing after /readyz recovered and logins worked:\n%s", strings.Join(failedAfter, "\n"))
	}
}

// signIn runs one login that must succeed.
func signIn(t *testing.T, s *site, email string) *tokens {
	t.Helper()
	b := newBrowser(email)
	defer b.close()
	tok, err := s.newLogin(b).run(t.Context())
	if err != nil {
		t.Fatalf("login of %s: %v", email, err)
	}
	return tok
}

// waitStatus polls url until it answers want.
func waitStatus(url string, want int, d time.Duration) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	begun := time.Now()
	var last string
	for time.Since(begun) < d {
		st, err := httpStatus(context.Background(), hc, url)
		if err == nil && st == want {
			return nil
		}
		last = fmt.Sprint(st, " ", err)
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, d, last)
}

// loadGen polls /readyz and lists tenants through the admin API, each every
// 50 ms, recording every answer.
type loadGen struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	recs   []loadRecord
	once   sync.Once
}

type loadRecord struct {
	at     time.Time
	path   string
	status int
	err    error
	took   time.Duration
}

func (r loadRecord) String() string {
	return fmt.Sprintf("%s GET %s: %d %v in %s", r.at.Format("15:04:05.000"), r.path, r.status, r.err, r.took.Round(time.Millisecond))
}

func startLoad(base string) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadGen{cancel: cancel}
	admin := newAdminAPI(base)
	for _, path := range []string{"/readyz", "/api/v1/tenants?limit=5"} {
		l.wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			defer hc.CloseIdleConnections()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				begun := time.Now()
				var st int
				var err error
				if strings.HasPrefix(path, "/api/") {
					st, _, err = admin.call(ctx, "GET", path, nil, nil)
				} else {
					st, err = httpStatus(ctx, hc, base+path)
				}
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				l.recs = append(l.recs, loadRecord{at: begun, path: path, status: st, err: err, took: time.Since(begun)})
				l.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return l
}

// stop ends the load and returns what it saw.
func (l *loadGen) stop() []loadRecord {
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs
}
