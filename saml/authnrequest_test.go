package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// golden compares got with testdata/golden/<t.Name()>.xml, or rewrites it
// with -update.
func golden(t *testing.T, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", strings.ReplaceAll(t.Name(), "/", "__")+".xml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (run go test -update after checking the change)\ngot:\n%s", path, got)
	}
}

func inflate(t *testing.T, redirectURL string) []byte {
	t.Helper()
	u, err := url.Parse(redirectURL)
	if err != nil {
		t.Fatal(err)
	}
	deflated, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuthnRequest(t *testing.T) {
	t.Run("redirect", func(t *testing.T) {
		e := newTestEnv(t)
		req, err := e.sp.NewAuthnRequest("relay_STATE-1", false)
		if err != nil {
			t.Fatal(err)
		}
		if req.Binding != BindingRedirect || req.PostURL != "" || req.SAMLRequest != "" || !strings.HasPrefix(req.RedirectURL, e.sim.SSOURL()+"?SAMLRequest=") {
			t.Fatalf("%+v", req)
		}
		if !req.IssuedAt.Equal(testNow) || !req.ExpiresAt.Equal(testNow.Add(DefaultRequestTTL)) {
			t.Fatalf("issued %s expires %s", req.IssuedAt, req.ExpiresAt)
		}
		u, _ := url.Parse(req.RedirectURL)
		if u.Query().Get("RelayState") != "relay_STATE-1" || u.Query().Get("Signature") != "" {
			t.Fatalf("query %v", u.Query())
		}
		info, err := e.sim.ParseAuthnRequest(httptest.NewRequest("GET", req.RedirectURL, nil))
		if err != nil || info.Signed || info.NameIDFormat != nameIDEmail || info.ACSURL != e.sp.ACSURL() || info.RelayState != "relay_STATE-1" {
			t.Fatalf("%+v %v", info, err)
		}
		golden(t, inflate(t, req.RedirectURL))
	})
	t.Run("redirect signed", func(t *testing.T) {
		e := newTestEnv(t, func(c *tenants.Connection) { c.Policy.SignAuthnRequests = true })
		req, err := e.sp.NewAuthnRequest("rs", true)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(req.RedirectURL)
		if u.Query().Get("SigAlg") != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" || u.Query().Get("Signature") == "" {
			t.Fatalf("query %v", u.Query())
		}
		info, err := e.sim.ParseAuthnRequest(httptest.NewRequest("GET", req.RedirectURL, nil))
		if err != nil || !info.Signed || !info.ForceAuthn {
			t.Fatalf("%+v %v", info, err)
		}
		tampered := strings.Replace(req.RedirectURL, "RelayState=rs", "RelayState=rt", 1)
		if _, err := e.sim.ParseAuthnRequest(httptest.NewRequest("GET", tampered, nil)); err == nil {
			t.Fatal("tampered signed request accepted")
		}
		unsigned := req.RedirectURL[:strings.Index(req.RedirectURL, "&SigAlg=")]
		if _, err := e.sim.ParseAuthnRequest(httptest.NewRequest("GET", unsigned, nil)); err == nil {
			t.Fatal("metadata says AuthnRequestsSigned, unsigned request accepted")
		}
		golden(t, inflate(t, req.RedirectURL))
	})
	t.Run("IdP URL with a query", func(t *testing.T) {
		// Google's SSO URL carries ?idpid=; the signature must cover only
		// the SAML parameters (bindings 3.4.4.1).
		e := newTestEnv(t, func(c *tenants.Connection) {
			c.Policy.SignAuthnRequests = true
			c.IdP.SSORedirectURL = "https://accounts.google.example.com/o/saml2/idp?idpid=C01abc"
		})
		req, err := e.sp.NewAuthnRequest("rs", false)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(req.RedirectURL)
		if u.Query().Get("idpid") != "C01abc" || !strings.HasPrefix(u.RawQuery, "idpid=C01abc&SAMLRequest=") {
			t.Fatalf("%s", req.RedirectURL)
		}
		if err := verifyRedirectSignature(u.RawQuery, e.sp.cert); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("post signed", func(t *testing.T) {
		e := newTestEnv(t, func(c *tenants.Connection) {
			c.Policy.SignAuthnRequests = true
			c.IdP.SSORedirectURL = ""
			c.Preset = tenants.PresetEntra
		})
		req, err := e.sp.NewAuthnRequest("", false)
		if err != nil {
			t.Fatal(err)
		}
		if req.Binding != BindingPost || req.RedirectURL != "" || req.PostURL != e.sim.SSOURL() {
			t.Fatalf("%+v", req)
		}
		xml, err := base64.StdEncoding.DecodeString(req.SAMLRequest)
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"SAMLRequest": {req.SAMLRequest}, "RelayState": {req.RelayState}}
		r := httptest.NewRequest("POST", e.sim.SSOURL(), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		info, err := e.sim.ParseAuthnRequest(r)
		if err != nil || !info.Signed || info.NameIDFormat != nameIDPersistent || info.Binding != BindingPost {
			t.Fatalf("%+v %v", info, err)
		}
		golden(t, xml)
	})
	t.Run("unspecified format omitted", func(t *testing.T) {
		e := newTestEnv(t, func(c *tenants.Connection) { c.Policy.NameIDFormat = nameIDUnspecified })
		req, err := e.sp.NewAuthnRequest("", false)
		if err != nil {
			t.Fatal(err)
		}
		xml := inflate(t, req.RedirectURL)
		if bytes.Contains(xml, []byte("Format=")) && bytes.Contains(xml, []byte("NameIDPolicy Format")) {
			t.Fatalf("unspecified should omit Format: %s", xml)
		}
		if !bytes.Contains(xml, []byte(`AllowCreate="true"`)) || bytes.Contains(xml, []byte("transient")) {
			t.Fatalf("%s", xml)
		}
	})
	t.Run("relay state", func(t *testing.T) {
		e := newTestEnv(t)
		for _, rs := range []string{"a b", "a&b=c", "é", strings.Repeat("a", 81), "a/b"} {
			if _, err := e.sp.NewAuthnRequest(rs, false); err == nil {
				t.Errorf("relay state %q accepted", rs)
			}
		}
		if _, err := e.sp.NewAuthnRequest(strings.Repeat("a", 80), false); err != nil {
			t.Error(err)
		}
	})
	t.Run("IDs are unique", func(t *testing.T) {
		e := newTestEnv(t)
		seen := map[string]bool{}
		for range 50 {
			req, err := e.sp.NewAuthnRequest("", false)
			if err != nil || seen[req.ID] || !strings.HasPrefix(req.ID, "id-") || len(req.ID) != 43 {
				t.Fatalf("%q %v", req.ID, err)
			}
			seen[req.ID] = true
		}
	})
}

func TestSPMetadata(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*tenants.Connection)
	}{
		{"okta", nil},
		{"entra signed requests", func(c *tenants.Connection) {
			c.Preset = tenants.PresetEntra
			c.Policy.SignAuthnRequests = true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *tenants.Connection) {
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			md, err := e.sp.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			entities, err := parseMetadataEntities(md)
			if err != nil || len(entities) != 1 || len(entities[0].SPs) != 1 {
				t.Fatalf("%v %+v", err, entities)
			}
			sp := entities[0].SPs[0]
			if entities[0].EntityID != "https://sso.example.com/saml/conn_a" || len(sp.ACS) != 1 ||
				sp.ACS[0].Location != "https://sso.example.com/saml/conn_a/acs" || len(sp.Keys) != 2 {
				t.Fatalf("%+v", entities[0])
			}
			if bytes.Contains(md, []byte("Artifact")) || bytes.Contains(md, []byte("validUntil")) || !bytes.Contains(md, []byte(`WantAssertionsSigned="true"`)) {
				t.Fatalf("%s", md)
			}
			if e.sp.EntityID() != "https://sso.example.com/saml/conn_a" || e.sp.ACSURL() != e.sp.EntityID()+"/acs" || e.sp.MetadataURL() != e.sp.EntityID()+"/metadata" {
				t.Fatal("URLs")
			}
			golden(t, md)
		})
	}
}

func TestNewServiceProvider(t *testing.T) {
	e := newTestEnv(t)
	good := e.conn
	opts := Options{BaseURL: "https://sso.example.com"}
	for _, tc := range []struct {
		name string
		mod  func(*tenants.Connection, *Options)
	}{
		{"no base URL", func(_ *tenants.Connection, o *Options) { o.BaseURL = "" }},
		{"relative base URL", func(_ *tenants.Connection, o *Options) { o.BaseURL = "/sso" }},
		{"trailing slash", func(_ *tenants.Connection, o *Options) { o.BaseURL = "https://sso.example.com/" }},
		{"query", func(_ *tenants.Connection, o *Options) { o.BaseURL = "https://sso.example.com?a=b" }},
		{"huge skew", func(_ *tenants.Connection, o *Options) { o.ClockSkew = time.Hour }},
		{"huge age", func(_ *tenants.Connection, o *Options) { o.MaxResponseAge = 2 * time.Hour }},
		{"huge size", func(_ *tenants.Connection, o *Options) { o.MaxResponseBytes = 64 << 20 }},
		{"bad connection ID", func(c *tenants.Connection, _ *Options) { c.ID = "conn/../x" }},
		{"no IdP entity", func(c *tenants.Connection, _ *Options) { c.IdP.EntityID = "" }},
		{"no IdP certificate", func(c *tenants.Connection, _ *Options) { c.IdP.Certificates = nil }},
		{"bad IdP certificate", func(c *tenants.Connection, _ *Options) { c.IdP.Certificates = []string{"nope"} }},
		{"no SP key", func(c *tenants.Connection, _ *Options) { c.SPKey = "" }},
		{"SP key and certificate mismatch", func(c *tenants.Connection, _ *Options) {
			c.SPCertificate = tenants.CertificatePEM(testCert(t, readKey(t, "sp-b"), "x", certFrom, certTo))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, o := good, opts
			c.IdP.Certificates = append([]string{}, good.IdP.Certificates...)
			tc.mod(&c, &o)
			if _, err := NewServiceProvider(c, o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	sp, err := NewServiceProvider(good, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Connection().ID != good.ID || sp.opts.ClockSkew != DefaultClockSkew || sp.opts.MaxResponseBytes != DefaultMaxResponseBytes {
		t.Fatal("defaults")
	}
}

func newDeflateWriter(t *testing.T, w io.Writer) io.WriteCloser {
	t.Helper()
	b64 := base64.NewEncoder(base64.StdEncoding, w)
	fw, err := flate.NewWriter(b64, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	return closeBoth{fw, b64}
}

type closeBoth struct {
	io.WriteCloser
	outer io.Closer
}

func (c closeBoth) Close() error {
	if err := c.WriteCloser.Close(); err != nil {
		return err
	}
	return c.outer.Close()
}
