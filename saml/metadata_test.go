package saml

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

func idpEntity(entityID string, certs []string, ssoBindings map[string]string, use string) string {
	var b strings.Builder
	b.WriteString(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">`)
	b.WriteString(`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">`)
	for _, c := range certs {
		u := ""
		if use != "" {
			u = ` use="` + use + `"`
		}
		b.WriteString(`<md:KeyDescriptor` + u + `><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + c + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`)
	}
	for binding, loc := range ssoBindings {
		b.WriteString(`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:` + binding + `" Location="` + loc + `"/>`)
	}
	b.WriteString(`</md:IDPSSODescriptor></md:EntityDescriptor>`)
	return b.String()
}

func TestParseIdPMetadata(t *testing.T) {
	k := readKey(t, "idp-a")
	c1 := testCert(t, k, "current", certFrom, certTo)
	c2 := testCert(t, readKey(t, "idp-b"), "next", certFrom, certTo)
	enc := testCert(t, readKey(t, "sp-b"), "encryption", certFrom, certTo)
	raw := func(der []byte) string {
		// Wrapped at 64 columns with indentation, as IdPs print it.
		s := base64.StdEncoding.EncodeToString(der)
		var out strings.Builder
		for len(s) > 64 {
			out.WriteString("\n      " + s[:64])
			s = s[64:]
		}
		out.WriteString("\n      " + s + "\n")
		return out.String()
	}
	rollover := idpEntity("https://idp.example.com", []string{raw(c1.Raw), raw(c2.Raw)},
		map[string]string{"HTTP-Redirect": "https://idp.example.com/sso/redirect", "HTTP-POST": "https://idp.example.com/sso/post"}, "signing")
	withEnc := strings.Replace(rollover, `</md:IDPSSODescriptor>`, `<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>`+raw(enc.Raw)+`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor>`, 1)

	t.Run("rollover, both bindings, encryption key ignored", func(t *testing.T) {
		cfg, err := ParseIdPMetadata([]byte(withEnc))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EntityID != "https://idp.example.com" || cfg.SSORedirectURL != "https://idp.example.com/sso/redirect" ||
			cfg.SSOPostURL != "https://idp.example.com/sso/post" || len(cfg.Certificates) != 2 || cfg.MetadataXML != withEnc {
			t.Fatalf("%+v", cfg)
		}
		if cfg.Certificates[0] != tenants.CertificatePEM(c1) || cfg.Certificates[1] != tenants.CertificatePEM(c2) {
			t.Fatal("certificates differ")
		}
	})
	t.Run("no use attribute means signing", func(t *testing.T) {
		cfg, err := ParseIdPMetadata([]byte(idpEntity("https://idp.example.com", []string{raw(c1.Raw)}, map[string]string{"HTTP-POST": "https://idp.example.com/sso"}, "")))
		if err != nil || len(cfg.Certificates) != 1 || cfg.SSORedirectURL != "" {
			t.Fatalf("%+v %v", cfg, err)
		}
	})
	t.Run("EntitiesDescriptor with one IdP", func(t *testing.T) {
		doc := "\ufeff" + `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntitiesDescriptor>` + rollover + `</md:EntitiesDescriptor>` +
			`<md:EntityDescriptor entityID="https://sp.example.com"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor></md:EntitiesDescriptor>`
		cfg, err := ParseIdPMetadata([]byte(doc))
		if err != nil || cfg.EntityID != "https://idp.example.com" {
			t.Fatalf("%+v %v", cfg, err)
		}
	})
	t.Run("simulator metadata", func(t *testing.T) {
		e := newTestEnv(t)
		cfg, err := ParseIdPMetadata(e.sim.Metadata())
		if err != nil || cfg.EntityID != e.sim.EntityID() || cfg.SSORedirectURL != e.sim.SSOURL() || cfg.SSOPostURL != e.sim.SSOURL() {
			t.Fatalf("%+v %v", cfg, err)
		}
	})
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"two IdPs", `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">` + rollover + strings.Replace(rollover, "https://idp.example.com\"", "https://other.example.com\"", 1) + `</md:EntitiesDescriptor>`, `2 identity providers ("https://idp.example.com", "https://other.example.com")`},
		{"no IdP", `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`, "no SAML 2.0 IDPSSODescriptor"},
		{"DTD", `<!DOCTYPE x [<!ENTITY e "e">]>` + rollover, "DTD not allowed"},
		{"too large", rollover + strings.Repeat(" ", MaxMetadataBytes), "limit"},
		{"not metadata", `<x/>`, "not a SAML metadata"},
		{"javascript SSO URL", idpEntity("https://idp.example.com", []string{raw(c1.Raw)}, map[string]string{"HTTP-POST": "javascript:alert(1)"}, ""), "idp_sso_url"},
		{"http SSO URL", idpEntity("https://idp.example.com", []string{raw(c1.Raw)}, map[string]string{"HTTP-POST": "http://idp.example.com/sso"}, ""), "https"},
		{"no certificate", idpEntity("https://idp.example.com", nil, map[string]string{"HTTP-POST": "https://idp.example.com/sso"}, ""), "idp_certificates"},
		{"bad certificate", idpEntity("https://idp.example.com", []string{"AAAA"}, map[string]string{"HTTP-POST": "https://idp.example.com/sso"}, ""), "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIdPMetadata([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestGenerateSPKey(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key, certPEM, err := GenerateSPKey(detRandom("gen"), now, "sso.example.com conn_x")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key.Reveal(), "-----BEGIN PRIVATE KEY-----") || key.String() != "[redacted]" {
		t.Fatal("key is not PKCS#8 PEM in a Secret")
	}
	k, err := parseRSAPrivateKey(key)
	if err != nil || k.N.BitLen() != 2048 {
		t.Fatalf("%v", err)
	}
	c, err := tenants.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "sso.example.com conn_x" || !c.NotAfter.Equal(now.Add(spCertValidity)) || c.NotBefore.After(now) {
		t.Fatalf("%s %s %s", c.Subject, c.NotBefore, c.NotAfter)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Fatal("not self-signed:", err)
	}
	// Usable as a connection's SP key.
	e := newTestEnv(t, func(conn *tenants.Connection) { conn.SPKey, conn.SPCertificate = key, certPEM })
	id, doc := e.login(t, alice(), Scenario{Encrypt: EncryptAES256CBC})
	_, err = e.validate(doc, id)
	wantReason(t, err, "")
	if _, _, err := GenerateSPKey(nil, now, ""); err == nil {
		t.Fatal("empty common name accepted")
	}
}

func TestInspectCertificates(t *testing.T) {
	k := readKey(t, "idp-a")
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	expired := testCert(t, k, "old", now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1))
	soon := testCert(t, k, "soon", now.AddDate(-1, 0, 0), now.AddDate(0, 0, 10))
	fine := testCert(t, k, "fine", now.AddDate(-1, 0, 0), now.AddDate(2, 0, 0))
	infos := InspectCertificates(tenants.IdPConfig{Certificates: []string{
		tenants.CertificatePEM(expired), tenants.CertificatePEM(soon), tenants.CertificatePEM(fine), "garbage",
	}}, now, 30*24*time.Hour)
	if len(infos) != 4 {
		t.Fatalf("%d infos", len(infos))
	}
	if !infos[0].Expired || infos[0].ExpiresSoon || infos[1].Expired || !infos[1].ExpiresSoon || infos[2].Expired || infos[2].ExpiresSoon {
		t.Fatalf("%+v", infos)
	}
	if infos[2].Subject != "CN=fine" || len(infos[2].SHA256Fingerprint) != 95 || !strings.Contains(infos[3].Subject, "invalid") {
		t.Fatalf("%+v", infos)
	}
}

func TestDecodeResponse(t *testing.T) {
	doc := []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`)
	enc := base64.StdEncoding.EncodeToString(doc)
	wrapped := enc[:20] + "\r\n" + enc[20:40] + " \t\n" + enc[40:]
	for _, in := range []string{enc, wrapped} {
		got, err := DecodeResponse(in, 0)
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("%q: %v", got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want Reason
	}{
		{"", ReasonMalformed},
		{"!!!!", ReasonMalformed},
		{enc[:len(enc)-1], ReasonMalformed},
		{strings.Repeat("QUFB", 200), ReasonTooLarge},
	} {
		_, err := DecodeResponse(tc.in, 300)
		wantReason(t, err, tc.want)
	}
}

func TestInResponseTo(t *testing.T) {
	e := newTestEnv(t)
	id, doc := e.login(t, alice(), Scenario{})
	if got, err := InResponseTo(doc); err != nil || got != id {
		t.Fatalf("%q %v", got, err)
	}
	// Response without InResponseTo: the assertion's is used.
	c := e.craft("req-7")
	c.InResponseTo = ""
	if got, err := InResponseTo(c.render(t)); err != nil || got != "req-7" {
		t.Fatalf("%q %v", got, err)
	}
	_, unsolicited := e.login(t, alice(), Scenario{Name: ScenarioUnsolicited})
	if got, err := InResponseTo(unsolicited); err != nil || got != "" {
		t.Fatalf("%q %v", got, err)
	}
	// Status errors and structure are ValidateResponse's business, not a
	// lookup's.
	_, errDoc := e.login(t, alice(), Scenario{Name: ScenarioIdPError})
	if got, err := InResponseTo(errDoc); err != nil || got == "" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{`<!DOCTYPE x><x/>`, `<x/>`, `not xml`, strings.Repeat(" ", MaxResponseBytesLimit+1)} {
		if _, err := InResponseTo([]byte(bad)); err == nil {
			t.Fatalf("%.20q accepted", bad)
		}
	}
}
