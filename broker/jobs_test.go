package broker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/audit"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

// TestMetadataRefresh: a due metadata URL is fetched; a changed IdP config
// is applied and audited; a failing fetch keeps the last good config,
// records the error on the connection and in the audit log, and retries
// sooner; only the replica holding the lease runs the job.
func TestMetadataRefresh(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			clock := &fakeClock{t: time.Now().UTC()}
			first, err := saml.NewSimulator(saml.SimulatorConfig{BaseURL: "https://idp.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			rolled, err := saml.NewSimulator(saml.SimulatorConfig{BaseURL: "https://idp.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			var serve atomic.Value // []byte, or nil for a 500
			serve.Store(first.Metadata())
			idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				md, _ := serve.Load().([]byte)
				if md == nil {
					http.Error(w, "down", http.StatusInternalServerError)
					return
				}
				_, _ = w.Write(md)
			}))
			defer idp.Close()

			url := b.URL(t)
			newApp := func() *App {
				st := storetest.OpenURL(t, url)
				a, err := New(Config{Issuer: "https://sso.example.com", AdminToken: "0123456789abcdef0123", Clock: clock, MetadataRefreshInterval: time.Hour},
					Deps{Store: st, Fetcher: &saml.MetadataFetcher{AllowLoopbackHTTP: true, AllowPrivateNetworks: true}})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			a1, a2 := newApp(), newApp()
			dir := a1.dir
			tn, err := dir.CreateTenant(ctx, tenants.NewTenant{Name: "Acme", Domains: []string{"acme.com"}})
			if err != nil {
				t.Fatal(err)
			}
			key, cert, err := saml.GenerateSPKey(nil, clock.Now(), "sp")
			if err != nil {
				t.Fatal(err)
			}
			idpCfg := first.IdPConfig()
			conn, err := dir.CreateConnection(ctx, tenants.Connection{TenantID: tn.ID, Name: "Okta", IdP: idpCfg, SPKey: key, SPCertificate: cert,
				Metadata: tenants.MetadataSource{URL: idp.URL + "/metadata", NextRefreshAt: clock.Now().Add(time.Hour)}})
			if err != nil {
				t.Fatal(err)
			}
			events := func(typ audit.Type) int {
				list, _, err := a1.deps.Store.ListAudit(ctx, audit.Filter{TenantID: tn.ID, Type: typ, Limit: 50})
				if err != nil {
					t.Fatal(err)
				}
				return len(list)
			}
			run := func(a *App, holder string) {
				a.runJob(ctx, "metadata_refresh", holder, time.Minute, a.refreshMetadata)
			}

			// Not due yet: nothing happens.
			serve.Store(rolled.Metadata())
			run(a1, "replica-1")
			if c, _ := dir.Store.Connection(ctx, conn.ID); c.IdP.Certificates[0] != idpCfg.Certificates[0] {
				t.Fatal("refreshed before it was due")
			}

			// Due, and the IdP rolled its key: the new config applies.
			clock.advance(2 * time.Hour)
			run(a1, "replica-1")
			c, _ := dir.Store.Connection(ctx, conn.ID)
			if c.IdP.Certificates[0] == idpCfg.Certificates[0] || c.Metadata.LastError != "" || !c.UpdatedAt.After(conn.UpdatedAt) {
				t.Fatalf("rollover not applied: %+v", c.Metadata)
			}
			if events(audit.ConnectionMetadataRefresh) != 1 {
				t.Fatal("no connection.metadata_refreshed event")
			}
			good := c.IdP

			// Due again, the IdP is down: the last good config stays.
			clock.advance(2 * time.Hour)
			serve.Store([]byte(nil))
			run(a1, "replica-1")
			c, _ = dir.Store.Connection(ctx, conn.ID)
			if c.IdP.Certificates[0] != good.Certificates[0] || c.Metadata.LastError == "" {
				t.Fatalf("failure handling: last error %q", c.Metadata.LastError)
			}
			if retry := c.Metadata.NextRefreshAt.Sub(clock.Now()); retry > 16*time.Minute {
				t.Fatalf("retries in %s after a failure, want sooner than the interval", retry)
			}
			if events(audit.ConnectionMetadataFailed) != 1 {
				t.Fatal("no connection.metadata_refresh_failed event")
			}

			// The lease: while replica 1 holds it, replica 2 does not run
			// the job; once it expires, replica 2 takes over.
			clock.advance(16 * time.Minute)
			serve.Store(first.Metadata())
			if ok, err := a1.deps.Store.AcquireLease(ctx, "job:metadata_refresh", "replica-1", 10*time.Minute, clock.Now()); err != nil || !ok {
				t.Fatalf("lease: %t %v", ok, err)
			}
			run(a2, "replica-2")
			if c2, _ := dir.Store.Connection(ctx, conn.ID); c2.Metadata.LastError == "" {
				t.Fatal("a second replica ran the job while the first held the lease")
			}
			clock.advance(11 * time.Minute)
			run(a2, "replica-2")
			if c2, _ := dir.Store.Connection(ctx, conn.ID); c2.Metadata.LastError != "" {
				t.Fatalf("replica 2 did not take over the expired lease: %q", c2.Metadata.LastError)
			}
		})
	}
}
