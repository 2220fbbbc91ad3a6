package broker_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/broker"
	"github.com/ssobroker/ssobroker/saml"
	"github.com/ssobroker/ssobroker/store/storetest"
)

const adminToken = "test-admin-token-0123456789abcdef"

// adminClient drives the admin API of one test broker.
type adminClient struct {
	t    testing.TB
	base string
	app  *broker.App
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

func (c *adminClient) do(method, path string, body any, opts ...func(*http.Request)) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// newAdminClient starts a broker on 127.0.0.1 over a fresh store.
func newAdminClient(t *testing.T, b storetest.Backend) *adminClient {
	t.Helper()
	st := b.Open(t)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	app, err := broker.New(broker.Config{Issuer: srv.URL, AdminToken: adminToken}, broker.Deps{
		Store:   st,
		Fetcher: &saml.MetadataFetcher{AllowLoopbackHTTP: true, AllowPrivateNetworks: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = app.Handler()
	return &adminClient{t: t, base: srv.URL, app: app}
}

// snapshot captures everything the admin API can show, to prove that a
// rejected request changed nothing.
func (c *adminClient) snapshot() string {
	c.t.Helper()
	var sb strings.Builder
	for _, p := range []string{"/api/v1/tenants?limit=200", "/api/v1/clients?limit=200"} {
		r := c.do("GET", p, nil)
		sb.Write(r.Body)
	}
	var ts struct {
		Data []struct{ ID string } `json:"data"`
	}
	c.do("GET", "/api/v1/tenants?limit=200", nil).json(c.t, &ts)
	for _, tn := range ts.Data {
		sb.Write(c.do("GET", "/api/v1/tenants/"+tn.ID+"/connections", nil).Body)
		sb.Write(c.do("GET", "/api/v1/identities?tenant_id="+tn.ID, nil).Body)
	}
	sb.Write(c.do("GET", "/api/v1/audit-events?limit=200", nil).Body)
	return sb.String()
}

type problemBody struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Field     string `json:"field"`
	RequestID string `json:"request_id"`
}

func testCert(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func fixtureMetadata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "saml", "testdata", "fixtures", name, "idp-metadata.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminAPIRejectsBadInput(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c := newAdminClient(t, b)
			var acme, other struct {
				ID string `json:"id"`
			}
			if r := c.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme", "domains": []string{"acme.com"}}); r.Status != 201 {
				t.Fatalf("create tenant: %d %s", r.Status, r.Body)
			} else {
				r.json(t, &acme)
			}
			c.do("POST", "/api/v1/tenants", map[string]any{"name": "Other", "domains": []string{"other.com"}}).json(t, &other)
			var cli struct {
				ClientID string `json:"client_id"`
			}
			c.do("POST", "/api/v1/clients", map[string]any{"name": "App", "redirect_uris": []string{"https://app.example.com/cb"}}).json(t, &cli)
			var conn struct {
				ID string `json:"id"`
			}
			if r := c.do("POST", "/api/v1/tenants/"+acme.ID+"/connections", map[string]any{
				"name": "Okta", "preset": "okta", "idp_entity_id": "https://idp.acme.com", "idp_sso_url": "https://idp.acme.com/sso",
				"idp_certificates": []string{testCert(t, "idp")},
			}); r.Status != 201 {
				t.Fatalf("create connection: %d %s", r.Status, r.Body)
			} else {
				r.json(t, &conn)
			}
			big := `{"name": "` + strings.Repeat("a", 1<<20) + `"}`
			tests := []struct {
				name      string
				method    string
				path      string
				body      any
				opt       func(*http.Request)
				wantCode  int
				wantType  string
				wantField string
			}{
				{"no token", "GET", "/api/v1/tenants", nil, func(r *http.Request) { r.Header.Del("Authorization") }, 401, "unauthorized", ""},
				{"wrong token", "GET", "/api/v1/tenants", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminToken+"x") }, 401, "unauthorized", ""},
				{"basic auth instead of bearer", "GET", "/api/v1/tenants", nil, func(r *http.Request) { r.SetBasicAuth("admin", adminToken) }, 401, "unauthorized", ""},
				{"wrong content type", "POST", "/api/v1/tenants", `{"name":"x"}`, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, "unsupported_media_type", ""},
				{"malformed json", "POST", "/api/v1/tenants", `{"name":`, nil, 400, "malformed_json", ""},
				{"trailing data", "POST", "/api/v1/tenants", `{"name":"x"} {"name":"y"}`, nil, 400, "malformed_json", ""},
				{"unknown field", "POST", "/api/v1/tenants", `{"name":"x","domain":["x.com"]}`, nil, 400, "unknown_field", "domain"},
				{"wrong type", "POST", "/api/v1/tenants", `{"name":42}`, nil, 422, "invalid_field", "name"},
				{"body over 1 MiB", "POST", "/api/v1/tenants", big, nil, 413, "body_too_large", ""},
				{"empty name", "POST", "/api/v1/tenants", map[string]any{"name": "  "}, nil, 422, "invalid_field", "name"},
				{"name too long", "POST", "/api/v1/tenants", map[string]any{"name": strings.Repeat("n", 201)}, nil, 422, "invalid_field", "name"},
				{"public suffix domain", "POST", "/api/v1/tenants", map[string]any{"name": "X", "domains": []string{"x.com", "co.uk"}}, nil, 422, "invalid_field", "domains[1]"},
				{"ip domain", "POST", "/api/v1/tenants", map[string]any{"name": "X", "domains": []string{"10.1.2.3"}}, nil, 422, "invalid_field", "domains[0]"},
				{"single label domain", "POST", "/api/v1/tenants", map[string]any{"name": "X", "domains": []string{"intranet"}}, nil, 422, "invalid_field", "domains[0]"},
				{"domain held by another tenant, atomically", "POST", "/api/v1/tenants", map[string]any{"name": "X", "domains": []string{"new.com", "ACME.com"}}, nil, 409, "domain_taken", ""},
				{"too many domains", "POST", "/api/v1/tenants", map[string]any{"name": "X", "domains": manyDomains(101)}, nil, 422, "invalid_field", "domains"},
				{"unknown tenant", "GET", "/api/v1/tenants/ten_00000000000000000000000000", nil, nil, 404, "not_found", ""},
				{"malformed tenant id", "GET", "/api/v1/tenants/../../etc", nil, nil, 404, "", ""},
				{"rename unknown tenant", "PATCH", "/api/v1/tenants/ten_00000000000000000000000000", map[string]any{"name": "Y"}, nil, 404, "not_found", ""},
				{"rename with nothing", "PATCH", "/api/v1/tenants/" + acme.ID, map[string]any{}, nil, 422, "invalid_field", "name"},
				{"delete unknown tenant", "DELETE", "/api/v1/tenants/ten_00000000000000000000000000", nil, nil, 404, "not_found", ""},
				{"add taken domain", "POST", "/api/v1/tenants/" + other.ID + "/domains", map[string]any{"domain": "acme.com"}, nil, 409, "domain_taken", ""},
				{"add invalid domain", "POST", "/api/v1/tenants/" + other.ID + "/domains", map[string]any{"domain": "com"}, nil, 422, "invalid_field", "domain"},
				{"add domain to unknown tenant", "POST", "/api/v1/tenants/ten_00000000000000000000000000/domains", map[string]any{"domain": "new.com"}, nil, 404, "not_found", ""},
				{"remove another tenant's domain", "DELETE", "/api/v1/tenants/" + other.ID + "/domains/acme.com", nil, nil, 404, "not_found", ""},
				{"bad limit", "GET", "/api/v1/tenants?limit=0", nil, nil, 422, "invalid_field", "limit"},
				{"huge limit", "GET", "/api/v1/tenants?limit=100000", nil, nil, 422, "invalid_field", "limit"},
				{"client without redirect", "POST", "/api/v1/clients", map[string]any{"name": "A"}, nil, 422, "invalid_field", "redirect_uris"},
				{"client http redirect", "POST", "/api/v1/clients", map[string]any{"name": "A", "redirect_uris": []string{"http://app.example.com/cb"}}, nil, 422, "invalid_field", "redirect_uris[0]"},
				{"client fragment redirect", "POST", "/api/v1/clients", map[string]any{"name": "A", "redirect_uris": []string{"https://app.example.com/cb", "https://a.example.com/#x"}}, nil, 422, "invalid_field", "redirect_uris[1]"},
				{"client userinfo redirect", "POST", "/api/v1/clients", map[string]any{"name": "A", "redirect_uris": []string{"https://app.example.com@evil.example/cb"}}, nil, 422, "invalid_field", "redirect_uris[0]"},
				{"client unknown allowed tenant", "POST", "/api/v1/clients", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example.com/cb"}, "allowed_tenants": []string{"ten_00000000000000000000000000"}}, nil, 422, "invalid_field", "allowed_tenants[0]"},
				{"client ttl too long", "POST", "/api/v1/clients", map[string]any{"name": "A", "redirect_uris": []string{"https://a.example.com/cb"}, "access_token_ttl_seconds": 999999}, nil, 422, "invalid_field", "access_token_ttl"},
				{"client switch to public", "PATCH", "/api/v1/clients/" + cli.ClientID, map[string]any{"public": true}, nil, 422, "invalid_field", "public"},
				{"client patch bad redirect", "PATCH", "/api/v1/clients/" + cli.ClientID, map[string]any{"redirect_uris": []string{"ftp://x.example.com/"}}, nil, 422, "invalid_field", "redirect_uris[0]"},
				{"client patch no redirects", "PATCH", "/api/v1/clients/" + cli.ClientID, map[string]any{"redirect_uris": []string{}}, nil, 422, "invalid_field", "redirect_uris"},
				{"rotate unknown client", "POST", "/api/v1/clients/cli_00000000000000000000000000/secrets", nil, nil, 404, "not_found", ""},
				{"rotate negative grace", "POST", "/api/v1/clients/" + cli.ClientID + "/secrets", map[string]any{"grace_period_seconds": -1}, nil, 422, "invalid_field", "grace_period_seconds"},
				{"connection without source", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X"}, nil, 422, "invalid_field", "idp_metadata_xml"},
				{"connection with two sources", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_xml": fixtureMetadata(t, "okta-03"), "idp_entity_id": "x"}, nil, 422, "invalid_field", "idp_metadata_xml"},
				{"connection bad metadata", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_xml": "<nope/>"}, nil, 422, "invalid_metadata", "idp_metadata_xml"},
				{"connection metadata with DTD", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_xml": `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + fixtureMetadata(t, "okta-03")}, nil, 422, "invalid_metadata", "idp_metadata_xml"},
				{"connection http metadata url", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_url": "http://idp.example.com/metadata"}, nil, 422, "invalid_field", "idp_metadata_url"},
				{"connection bad cert", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_entity_id": "e", "idp_sso_url": "https://i.example.com/sso", "idp_certificates": []string{"not a cert"}}, nil, 422, "invalid_field", "idp_certificates[0]"},
				{"connection no cert", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_entity_id": "e", "idp_sso_url": "https://i.example.com/sso"}, nil, 422, "invalid_field", "idp_certificates"},
				{"connection http sso url", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_entity_id": "e", "idp_sso_url": "http://i.example.com/sso", "idp_certificates": []string{testCert(t, "x")}}, nil, 422, "invalid_field", "idp_sso_url"},
				{"connection bad preset", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "preset": "adfs2", "idp_metadata_xml": fixtureMetadata(t, "okta-03")}, nil, 422, "invalid_field", "preset"},
				{"connection bad binding", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_entity_id": "e", "idp_sso_url": "https://i.example.com/sso", "idp_sso_binding": "artifact", "idp_certificates": []string{testCert(t, "x")}}, nil, 422, "invalid_field", "idp_sso_binding"},
				{"connection transient nameid", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_xml": fixtureMetadata(t, "okta-03"), "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"}, nil, 422, "invalid_field", "name_id_format"},
				{"connection unknown mapping key", "POST", "/api/v1/tenants/" + acme.ID + "/connections", map[string]any{"name": "X", "idp_metadata_xml": fixtureMetadata(t, "okta-03"), "attribute_mapping": map[string]string{"mail": "x"}}, nil, 400, "unknown_field", "mail"},
				{"connection for unknown tenant", "POST", "/api/v1/tenants/ten_00000000000000000000000000/connections", map[string]any{"name": "X", "idp_metadata_xml": fixtureMetadata(t, "okta-03")}, nil, 404, "not_found", ""},
				{"connection bad status", "PATCH", "/api/v1/connections/" + conn.ID, map[string]any{"status": "paused"}, nil, 422, "invalid_field", "status"},
				{"unknown connection", "GET", "/api/v1/connections/conn_00000000000000000000000000", nil, nil, 404, "not_found", ""},
				{"identities without tenant", "GET", "/api/v1/identities", nil, nil, 422, "invalid_field", "tenant_id"},
				{"unknown identity", "POST", "/api/v1/identities/usr_00000000000000000000000000/deactivate", nil, nil, 404, "not_found", ""},
				{"audit bad type", "GET", "/api/v1/audit-events?type=login.maybe", nil, nil, 422, "invalid_field", "type"},
				{"audit bad since", "GET", "/api/v1/audit-events?since=yesterday", nil, nil, 422, "invalid_field", "since"},
				{"portal link ttl too short", "POST", "/api/v1/tenants/" + acme.ID + "/portal-links", map[string]any{"expires_in_seconds": 10}, nil, 422, "invalid_field", "expires_in_seconds"},
				{"portal link unknown tenant", "POST", "/api/v1/tenants/ten_00000000000000000000000000/portal-links", nil, nil, 404, "not_found", ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := c.snapshot()
					opts := []func(*http.Request){}
					if tt.opt != nil {
						opts = append(opts, tt.opt)
					}
					r := c.do(tt.method, tt.path, tt.body, opts...)
					if r.Status != tt.wantCode {
						t.Fatalf("status %d, want %d: %s", r.Status, tt.wantCode, r.Body)
					}
					if tt.wantType != "" {
						if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
							t.Fatalf("content type %q, want problem+json", ct)
						}
						var p problemBody
						r.json(t, &p)
						if !strings.HasSuffix(p.Type, "/"+tt.wantType) || p.Status != tt.wantCode || p.Detail == "" || p.RequestID == "" {
							t.Fatalf("problem %+v, want type %s with detail and request id", p, tt.wantType)
						}
						if p.Field != tt.wantField {
							t.Fatalf("problem field %q, want %q (detail %q)", p.Field, tt.wantField, p.Detail)
						}
					}
					if after := c.snapshot(); after != before {
						t.Fatalf("a rejected request changed the store")
					}
				})
			}
		})
	}
}

func manyDomains(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%d.example.com", i)
	}
	return out
}

func TestAdminAPILifecycle(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c := newAdminClient(t, b)
			var tn struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				Domains []struct {
					Domain   string `json:"domain"`
					Verified bool   `json:"verified"`
				} `json:"domains"`
			}
			r := c.do("POST", "/api/v1/tenants", map[string]any{"name": " Acme Corp ", "domains": []string{"Acme.COM", "bücher.example"}},
				func(r *http.Request) { r.Header.Set("X-Request-Id", "req-lifecycle-0001") })
			if r.Status != 201 {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			r.json(t, &tn)
			if tn.Name != "Acme Corp" || len(tn.Domains) != 2 || tn.Domains[0].Domain != "acme.com" || !tn.Domains[0].Verified ||
				tn.Domains[1].Domain != "xn--bcher-kva.example" {
				t.Fatalf("tenant %+v", tn)
			}
			if got := r.Header.Get("X-Request-Id"); got != "req-lifecycle-0001" {
				t.Fatalf("request id not echoed: %q", got)
			}

			// Pagination walks every tenant exactly once.
			for i := 0; i < 6; i++ {
				c.do("POST", "/api/v1/tenants", map[string]any{"name": fmt.Sprintf("T%d", i)})
			}
			seen := map[string]bool{}
			after := ""
			for pages := 0; ; pages++ {
				var page struct {
					Data []struct {
						ID string `json:"id"`
					} `json:"data"`
					NextAfter string `json:"next_after"`
				}
				c.do("GET", "/api/v1/tenants?limit=3&after="+after, nil).json(t, &page)
				for _, d := range page.Data {
					if seen[d.ID] {
						t.Fatalf("tenant %s seen twice", d.ID)
					}
					seen[d.ID] = true
				}
				if page.NextAfter == "" {
					break
				}
				after = page.NextAfter
				if pages > 5 {
					t.Fatal("pagination does not end")
				}
			}
			if len(seen) != 7 {
				t.Fatalf("walked %d tenants, want 7", len(seen))
			}

			// Clients: the secret is shown once and rotates.
			var cl struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			if r := c.do("POST", "/api/v1/clients", map[string]any{"name": "App", "redirect_uris": []string{"https://app.example.com/cb"}, "allowed_tenants": []string{tn.ID}}); r.Status != 201 {
				t.Fatalf("client: %d %s", r.Status, r.Body)
			} else {
				r.json(t, &cl)
			}
			if !strings.HasPrefix(cl.ClientSecret, "ssob_cs_") {
				t.Fatalf("secret %q", cl.ClientSecret)
			}
			if r := c.do("GET", "/api/v1/clients/"+cl.ClientID, nil); strings.Contains(string(r.Body), cl.ClientSecret) || strings.Contains(string(r.Body), "client_secret") {
				t.Fatalf("GET shows the secret: %s", r.Body)
			}
			var rotated struct {
				ClientSecret            string    `json:"client_secret"`
				PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
			}
			c.do("POST", "/api/v1/clients/"+cl.ClientID+"/secrets", map[string]any{"grace_period_seconds": 3600}).json(t, &rotated)
			if rotated.ClientSecret == "" || rotated.ClientSecret == cl.ClientSecret || rotated.PreviousSecretExpiresAt.IsZero() {
				t.Fatalf("rotation: %+v", rotated)
			}

			// Connections from each IdP source.
			md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/samlmetadata+xml")
				io.WriteString(w, fixtureMetadata(t, "okta-03"))
			}))
			defer md.Close()
			sources := []map[string]any{
				{"name": "Pasted", "preset": "okta", "idp_metadata_xml": fixtureMetadata(t, "entra-01")},
				{"name": "Fetched", "preset": "okta", "idp_metadata_url": md.URL + "/metadata"},
				{"name": "Manual", "preset": "generic", "idp_entity_id": "https://idp.acme.com", "idp_sso_url": "https://idp.acme.com/sso", "idp_sso_binding": "post", "idp_certificates": []string{testCert(t, "a")}},
			}
			var connID string
			for _, src := range sources {
				var conn struct {
					ID              string   `json:"id"`
					SPEntityID      string   `json:"sp_entity_id"`
					ACSURL          string   `json:"acs_url"`
					SPMetadataURL   string   `json:"sp_metadata_url"`
					IdPEntityID     string   `json:"idp_entity_id"`
					IdPCertificates []any    `json:"idp_certificates"`
					Status          string   `json:"status"`
					Warnings        []string `json:"warnings"`
					IdPMetadataURL  string   `json:"idp_metadata_url"`
				}
				r := c.do("POST", "/api/v1/tenants/"+tn.ID+"/connections", src)
				if r.Status != 201 {
					t.Fatalf("%s: %d %s", src["name"], r.Status, r.Body)
				}
				r.json(t, &conn)
				if conn.SPEntityID != c.base+"/saml/"+conn.ID || conn.ACSURL != conn.SPEntityID+"/acs" || conn.SPMetadataURL != conn.SPEntityID+"/metadata" ||
					conn.IdPEntityID == "" || len(conn.IdPCertificates) == 0 || conn.Status != "active" {
					t.Fatalf("%s: %s", src["name"], r.Body)
				}
				if src["name"] == "Fetched" && conn.IdPMetadataURL == "" {
					t.Fatalf("metadata URL not kept: %s", r.Body)
				}
				connID = conn.ID
			}
			// PATCH merges a rollover certificate into the manual config.
			r = c.do("PATCH", "/api/v1/connections/"+connID, map[string]any{"status": "inactive", "idp_certificates": []string{testCert(t, "old"), testCert(t, "new")}})
			var patched struct {
				Status          string   `json:"status"`
				IdPEntityID     string   `json:"idp_entity_id"`
				IdPSSOPostURL   string   `json:"idp_sso_post_url"`
				IdPCertificates []any    `json:"idp_certificates"`
				Warnings        []string `json:"warnings"`
			}
			r.json(t, &patched)
			if r.Status != 200 || patched.Status != "inactive" || len(patched.IdPCertificates) != 2 || patched.IdPEntityID != "https://idp.acme.com" || patched.IdPSSOPostURL != "https://idp.acme.com/sso" {
				t.Fatalf("patch: %d %s", r.Status, r.Body)
			}
			var list struct {
				Data []any `json:"data"`
			}
			c.do("GET", "/api/v1/tenants/"+tn.ID+"/connections", nil).json(t, &list)
			if len(list.Data) != 3 {
				t.Fatalf("%d connections listed, want 3", len(list.Data))
			}

			// Portal link.
			var link struct {
				URL       string    `json:"url"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			c.do("POST", "/api/v1/tenants/"+tn.ID+"/portal-links", nil).json(t, &link)
			if !strings.HasPrefix(link.URL, c.base+"/portal/open?token=ssob_pl_") || time.Until(link.ExpiresAt) < 23*time.Hour {
				t.Fatalf("portal link %+v", link)
			}

			// Every change is in the audit log with who, where and the
			// request id; filters work.
			var events struct {
				Data []struct {
					Type      string `json:"type"`
					TenantID  string `json:"tenant_id"`
					Actor     string `json:"actor"`
					IP        string `json:"ip"`
					RequestID string `json:"request_id"`
				} `json:"data"`
			}
			c.do("GET", "/api/v1/audit-events?type=tenant.created&tenant_id="+tn.ID, nil).json(t, &events)
			if len(events.Data) != 1 || events.Data[0].Actor != "admin" || events.Data[0].IP != "127.0.0.1" || events.Data[0].RequestID != "req-lifecycle-0001" {
				t.Fatalf("audit: %+v", events.Data)
			}
			c.do("GET", "/api/v1/audit-events?tenant_id="+tn.ID, nil).json(t, &events)
			types := map[string]bool{}
			for _, e := range events.Data {
				types[e.Type] = true
			}
			for _, want := range []string{"tenant.created", "connection.created", "connection.updated", "portal_link.created"} {
				if !types[want] {
					t.Errorf("audit has no %s event: %v", want, types)
				}
			}

			// Deleting the tenant removes its connections.
			if r := c.do("DELETE", "/api/v1/tenants/"+tn.ID, nil); r.Status != 204 {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
			if r := c.do("GET", "/api/v1/connections/"+connID, nil); r.Status != 404 {
				t.Fatalf("connection survived its tenant: %d", r.Status)
			}
			if r := c.do("GET", "/api/v1/audit-events?type=tenant.deleted", nil); !strings.Contains(string(r.Body), tn.ID) {
				t.Fatalf("no tenant.deleted event: %s", r.Body)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	b := storetest.Backends()[0]
	c := newAdminClient(t, b)
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(c.base + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
	}
}
