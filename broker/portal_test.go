package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/store/storetest"
	"github.com/ssobroker/ssobroker/tenants"
)

func TestPortal(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, envOptions{})
			var acme, beta idResp
			e.admin.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme", "domains": []string{"acme.com"}}).json(t, &acme)
			_, betaConn := e.tenant("Beta", "beta.com")
			e.admin.do("GET", "/api/v1/connections/"+betaConn, nil) // exists
			_ = beta
			var link struct {
				URL string `json:"url"`
			}
			e.admin.do("POST", "/api/v1/tenants/"+acme.ID+"/portal-links", nil).json(t, &link)

			br := newBrowser(t)
			p := br.open(http.MethodGet, link.URL, nil)
			if p.Status != http.StatusOK || p.URL.Path != "/portal/" || !strings.Contains(p.Body, "Single sign-on for Acme") || strings.Contains(p.URL.RawQuery, "token") {
				t.Fatalf("opening the link: %s %d %.300s", p.URL, p.Status, p.Body)
			}
			if strings.Contains(p.Body, "Beta") || strings.Contains(p.Body, betaConn) {
				t.Fatal("the portal shows another tenant's data")
			}

			t.Run("links are single use", func(t *testing.T) {
				other := newBrowser(t)
				if p := other.open(http.MethodGet, link.URL, nil); p.Status != http.StatusNotFound || strings.Contains(p.Body, "Acme") {
					t.Fatalf("second open: %d", p.Status)
				}
			})

			t.Run("expired links do not open", func(t *testing.T) {
				tok, _ := tenants.NewToken("ssob_pl_", strings.NewReader(strings.Repeat("e", 64)))
				past := time.Now().Add(-2 * time.Hour)
				if err := e.stores[0].CreatePortalLink(context.Background(), tenants.HashSecret(tok), acme.ID, past, past.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if p := newBrowser(t).open(http.MethodGet, e.issuer+"/portal/open?token="+tok.Reveal(), nil); p.Status != http.StatusNotFound {
					t.Fatalf("expired link opened: %d", p.Status)
				}
			})

			t.Run("create a connection from pasted metadata", func(t *testing.T) {
				p := br.open(http.MethodGet, e.issuer+"/portal/", nil)
				forms := p.forms(t)
				create := forms[len(forms)-2] // the create form comes before "leave"
				create.fields.Set("name", "Okta")
				create.fields.Set("preset", "okta")
				create.fields.Set("idp_metadata_xml", string(e.sim.Metadata()))
				p = br.open(http.MethodPost, create.action, create.fields)
				if p.Status != http.StatusOK || !strings.Contains(p.Body, "Saved.") || !strings.Contains(p.Body, "/acs</code>") || !strings.Contains(p.Body, e.sim.EntityID()) {
					t.Fatalf("create: %d %.600s", p.Status, p.Body)
				}
				var conns struct {
					Data []struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				e.admin.do("GET", "/api/v1/tenants/"+acme.ID+"/connections", nil).json(t, &conns)
				if len(conns.Data) != 1 {
					t.Fatalf("%d connections", len(conns.Data))
				}
				var ev struct {
					Data []struct {
						Actor string `json:"actor"`
					} `json:"data"`
				}
				e.admin.do("GET", "/api/v1/audit-events?type=connection.created&tenant_id="+acme.ID, nil).json(t, &ev)
				if len(ev.Data) != 1 || ev.Data[0].Actor != "portal" {
					t.Fatalf("audit: %+v", ev.Data)
				}
			})

			t.Run("bad metadata is explained", func(t *testing.T) {
				p := br.open(http.MethodGet, e.issuer+"/portal/", nil)
				forms := p.forms(t)
				create := forms[len(forms)-2]
				create.fields.Set("name", "Broken")
				create.fields.Set("idp_metadata_xml", "<EntityDescriptor")
				p = br.open(http.MethodPost, create.action, create.fields)
				if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "IdP metadata") {
					t.Fatalf("bad metadata: %d %.400s", p.Status, p.Body)
				}
			})

			t.Run("another tenant's connection is not found and unchanged", func(t *testing.T) {
				p := br.open(http.MethodGet, e.issuer+"/portal/", nil)
				csrf := p.forms(t)[0].fields.Get("csrf")
				p = br.open(http.MethodPost, e.issuer+"/portal/connections/"+betaConn, url.Values{"csrf": {csrf}, "status": {"inactive"}})
				if p.Status != http.StatusNotFound {
					t.Fatalf("cross-tenant update: %d", p.Status)
				}
				var c struct {
					Status string `json:"status"`
				}
				e.admin.do("GET", "/api/v1/connections/"+betaConn, nil).json(t, &c)
				if c.Status != "active" {
					t.Fatalf("beta's connection was changed to %s", c.Status)
				}
			})

			t.Run("CSRF token required", func(t *testing.T) {
				p := br.open(http.MethodPost, e.issuer+"/portal/connections", url.Values{"name": {"x"}, "idp_metadata_xml": {string(e.sim.Metadata())}})
				if p.Status != http.StatusForbidden {
					t.Fatalf("POST without CSRF: %d", p.Status)
				}
			})

			t.Run("no session, no portal", func(t *testing.T) {
				if p := newBrowser(t).open(http.MethodGet, e.issuer+"/portal/", nil); p.Status != http.StatusNotFound || strings.Contains(p.Body, "Acme") {
					t.Fatalf("portal without session: %d", p.Status)
				}
			})

			t.Run("logout ends the session", func(t *testing.T) {
				p := br.open(http.MethodGet, e.issuer+"/portal/", nil)
				forms := p.forms(t)
				br.open(http.MethodPost, forms[len(forms)-1].action, forms[len(forms)-1].fields)
				if p := br.open(http.MethodGet, e.issuer+"/portal/", nil); p.Status != http.StatusNotFound {
					t.Fatalf("after logout: %d", p.Status)
				}
			})
		})
	}
}
