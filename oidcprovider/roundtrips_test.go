package oidcprovider_test

import (
	"context"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/oidcprovider"
	"github.com/ssobroker/ssobroker/store"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// countingStore counts the store calls each step makes. Every method is
// one statement (one round trip on PostgreSQL) unless noted in the report.
type countingStore struct {
	*store.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
}

func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

func (c *countingStore) Client(ctx context.Context, id string) (tenants.Client, error) {
	c.count("Client")
	return c.Store.Client(ctx, id)
}

func (c *countingStore) CreateLogin(ctx context.Context, l oidcprovider.LoginRecord) error {
	c.count("CreateLogin")
	return c.Store.CreateLogin(ctx, l)
}

func (c *countingStore) Login(ctx context.Context, id string) (oidcprovider.LoginRecord, error) {
	c.count("Login")
	return c.Store.Login(ctx, id)
}

func (c *countingStore) RouteLogin(ctx context.Context, id string, r oidcprovider.LoginRoute, now time.Time) error {
	c.count("RouteLogin")
	return c.Store.RouteLogin(ctx, id, r, now)
}

func (c *countingStore) ConsumeSAMLRequest(ctx context.Context, conn, id string, now time.Time) (oidcprovider.LoginRecord, error) {
	c.count("ConsumeSAMLRequest")
	return c.Store.ConsumeSAMLRequest(ctx, conn, id, now)
}

func (c *countingStore) CompleteLogin(ctx context.Context, id string, lc oidcprovider.LoginCompletion, now time.Time) error {
	c.count("CompleteLogin")
	return c.Store.CompleteLogin(ctx, id, lc, now)
}

func (c *countingStore) SaveCode(ctx context.Context, id, code, browser string, exp, now time.Time) (oidcprovider.LoginRecord, error) {
	c.count("SaveCode")
	return c.Store.SaveCode(ctx, id, code, browser, exp, now)
}

func (c *countingStore) RedeemCode(ctx context.Context, r oidcprovider.CodeRedemption, now time.Time) (oidcprovider.LoginRecord, oidcprovider.Grant, error) {
	c.count("RedeemCode")
	return c.Store.RedeemCode(ctx, r, now)
}

func (c *countingStore) AccessToken(ctx context.Context, id string) (oidcprovider.TokenState, error) {
	c.count("AccessToken")
	return c.Store.AccessToken(ctx, id)
}

func (c *countingStore) RefreshToken(ctx context.Context, h string) (oidcprovider.TokenState, error) {
	c.count("RefreshToken")
	return c.Store.RefreshToken(ctx, h)
}

func (c *countingStore) RotateRefreshToken(ctx context.Context, old string, at oidcprovider.AccessToken, rt oidcprovider.RefreshToken, now time.Time) error {
	c.count("RotateRefreshToken")
	return c.Store.RotateRefreshToken(ctx, old, at, rt, now)
}

func (c *countingStore) SigningKeys(ctx context.Context) ([]oidcprovider.SigningKey, error) {
	c.count("SigningKeys")
	return c.Store.SigningKeys(ctx)
}

// TestStoreRoundTrips pins the store calls of each step of a login, so a
// change that adds a round trip to the hot path shows up here.
func TestStoreRoundTrips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t)
		cs := &countingStore{Store: st, calls: map[string]int{}}
		e := newEnvWithStores(t, st, cs)
		ctx := context.Background()
		r := e.confRP("openid", "email", "offline_access")
		cs.take()

		var f *flow
		tok := map[string]any{}
		steps := []struct {
			name string
			do   func()
			want map[string]int
		}{
			{"authorize", func() { f = r.authorize(t) }, map[string]int{"Client": 1, "CreateLogin": 1}},
			{"hosted page: Login", func() { _, err := e.p.Login(ctx, f.loginID); check(t, err, "Login") },
				map[string]int{"Login": 1}},
			{"StartSAML", func() {
				check(t, e.p.StartSAML(ctx, f.loginID, e.tenant.ID, e.conn.ID, "id-rt", e.clock.Now().Add(time.Minute)), "StartSAML")
			}, map[string]int{"RouteLogin": 1}},
			{"ACS: LoginBySAMLRequest", func() { _, err := e.p.LoginBySAMLRequest(ctx, e.conn.ID, "id-rt"); check(t, err, "ACS") },
				map[string]int{"ConsumeSAMLRequest": 1}},
			{"CompleteLogin", func() {
				cb, err := e.p.CompleteLogin(ctx, f.loginID, e.ident, e.conn, e.clock.Now())
				check(t, err, "CompleteLogin")
				tok["cb"] = cb
			}, map[string]int{"CompleteLogin": 1}},
			{"callback", func() { f.callback(t, tok["cb"].(string)) }, map[string]int{"SaveCode": 1}},
			{"token (code)", func() {
				status, body := e.tokenRequest(t, f, e.conf.ID, e.confSecret, nil)
				if status != http.StatusOK {
					t.Fatalf("token: %d %v", status, body)
				}
				tok = body
			}, map[string]int{"Client": 1, "RedeemCode": 1}},
			{"userinfo", func() {
				if s, _ := e.userinfo(t, tok["access_token"].(string)); s != http.StatusOK {
					t.Fatalf("userinfo %d", s)
				}
			}, map[string]int{"AccessToken": 1}},
			{"token (refresh)", func() {
				if s, body := e.refresh(t, e.conf, e.confSecret, tok["refresh_token"].(string)); s != http.StatusOK {
					t.Fatalf("refresh %d %v", s, body)
				}
			}, map[string]int{"Client": 1, "RefreshToken": 1, "RotateRefreshToken": 1}},
		}
		for _, s := range steps {
			s.do()
			if got := cs.take(); !reflect.DeepEqual(got, s.want) {
				t.Errorf("%s: store calls %v, want %v", s.name, got, s.want)
			}
		}
	})
}
