package saml

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// fixtureContext is context.json of one captured IdP response.
type fixtureContext struct {
	IdP          string  `json:"idp"`
	IdPEntityID  string  `json:"idp_entity_id"`
	SPEntityID   string  `json:"sp_entity_id"`
	ACSURL       string  `json:"acs_url"`
	InResponseTo *string `json:"in_response_to"`
	ValidAt      string  `json:"valid_at"`
	Signed       string  `json:"signed"`
	SigAlg       string  `json:"sig_alg"`
	Encrypted    bool    `json:"encrypted"`
	Expected     struct {
		NameID       string              `json:"name_id"`
		NameIDFormat string              `json:"name_id_format"`
		Email        *string             `json:"email"`
		Attributes   map[string][]string `json:"attributes"`
	} `json:"expected"`
}

type fixture struct {
	name     string
	dir      string
	ctx      fixtureContext
	response []byte
	validAt  time.Time
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*", "context.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, c := range dirs {
		dir := filepath.Dir(c)
		f := fixture{name: filepath.Base(dir), dir: dir}
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &f.ctx); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if f.response, err = os.ReadFile(filepath.Join(dir, "response.xml")); err != nil {
			t.Fatal(err)
		}
		if f.validAt, err = time.Parse(time.RFC3339, f.ctx.ValidAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if len(out) != 26 {
		t.Fatalf("found %d fixtures, want 26", len(out))
	}
	return out
}

// presetForIdP maps a fixture's IdP product to the preset an operator
// would pick. AD FS uses Entra's WS-Fed claim types.
func presetForIdP(idp string) tenants.Preset {
	switch idp {
	case "okta":
		return tenants.PresetOkta
	case "entra", "adfs":
		return tenants.PresetEntra
	case "google":
		return tenants.PresetGoogle
	case "onelogin":
		return tenants.PresetOneLogin
	case "pingfederate", "pingone":
		return tenants.PresetPing
	default:
		return tenants.PresetGeneric
	}
}

// idpConfig reads the fixture's IdP metadata (through ParseIdPMetadata) or
// its certificate. Several fixtures' metadata name http:// SSO URLs on
// hosts that are not loopback, which ValidateIdPConfig refuses; for those
// the test builds the config from the metadata's certificates itself.
func (f fixture) idpConfig(t testing.TB) tenants.IdPConfig {
	t.Helper()
	if md, err := os.ReadFile(filepath.Join(f.dir, "idp-metadata.xml")); err == nil {
		cfg, err := ParseIdPMetadata(md)
		if err == nil {
			if cfg.EntityID != f.ctx.IdPEntityID {
				t.Fatalf("metadata entityID %q, context says %q", cfg.EntityID, f.ctx.IdPEntityID)
			}
			return cfg
		}
		var ve *tenants.ValidationError
		if !errors.As(err, &ve) || ve.Field != "idp_sso_url" {
			t.Fatalf("ParseIdPMetadata: %v", err)
		}
		entities, err := parseMetadataEntities(md)
		if err != nil {
			t.Fatal(err)
		}
		cfg = tenants.IdPConfig{EntityID: f.ctx.IdPEntityID, SSORedirectURL: "https://idp.invalid/sso"}
		for _, k := range entities[0].IdPs[0].Keys {
			for _, xd := range k.KeyInfo.X509Data {
				for _, c := range xd.Certs {
					cert, err := parseBase64Cert(c)
					if err != nil {
						t.Fatal(err)
					}
					cfg.Certificates = append(cfg.Certificates, tenants.CertificatePEM(cert))
				}
			}
		}
		return cfg
	}
	pemBytes, err := os.ReadFile(filepath.Join(f.dir, "idp-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return tenants.IdPConfig{EntityID: f.ctx.IdPEntityID, SSORedirectURL: "https://idp.invalid/sso", Certificates: []string{string(pemBytes)}}
}

func (f fixture) requestID() string {
	if f.ctx.InResponseTo == nil {
		return ""
	}
	return *f.ctx.InResponseTo
}

// sp builds the fixture's SP with the given clock; mod adjusts the
// connection.
func (f fixture) sp(t testing.TB, clock tenants.Clock, mod func(*tenants.Connection)) *ServiceProvider {
	t.Helper()
	spKey := readKey(t, "sp")
	if f.ctx.Encrypted {
		b, err := os.ReadFile(filepath.Join(f.dir, "sp-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if spKey, err = parseRSAPrivateKey(tenants.Secret(b)); err != nil {
			t.Fatal(err)
		}
	}
	conn := tenants.Connection{
		ID: "conn_fixture", TenantID: "ten_fixture", Name: f.name, Status: tenants.StatusActive,
		Preset: presetForIdP(f.ctx.IdP), IdP: f.idpConfig(t),
		SPKey:         keyPEM(t, spKey),
		SPCertificate: tenants.CertificatePEM(testCert(t, spKey, "fixture-sp", certFrom.AddDate(-20, 0, 0), certTo)),
		Policy:        tenants.ConnectionPolicy{AllowIdPInitiated: f.ctx.InResponseTo == nil},
	}
	if mod != nil {
		mod(&conn)
	}
	sp, err := newServiceProvider(conn, Options{BaseURL: "https://sso.example.com", Clock: clock}, f.ctx.SPEntityID, f.ctx.ACSURL, "https://sso.example.com/saml/conn_fixture/metadata")
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func validateAt(sp *ServiceProvider, now time.Time, xml []byte, requestID string) (p tenants.Profile, err error) {
	withCrewjamNow(now, func() {
		p, err = sp.ValidateResponse(context.Background(), xml, requestID, newMemReplay())
	})
	return p, err
}

func allowSHA1(c *tenants.Connection) { c.Policy.AllowSHA1 = true }

// TestFixtures validates every captured IdP response against its own
// metadata or certificate at its valid_at instant, checks the mapped
// profile against context.json, and proves the checks bite: SHA-1
// responses are refused unless allowed, and tampered copies, an unrelated
// certificate and a clock a day off are rejected with the right reason.
func TestFixtures(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			clock := &fixedClock{t: f.validAt}
			legacy := f.ctx.SigAlg == "rsa-sha1"
			var mod func(*tenants.Connection)
			if legacy {
				t.Run("sha1 refused by default", func(t *testing.T) {
					_, err := validateAt(f.sp(t, clock, nil), f.validAt, f.response, f.requestID())
					wantReason(t, err, ReasonInsecureAlgorithm)
				})
				mod = allowSHA1
			}
			sp := f.sp(t, clock, mod)

			p, err := validateAt(sp, f.validAt, f.response, f.requestID())
			if err != nil {
				t.Fatalf("valid fixture rejected: %v", err)
			}
			if p.NameID != f.ctx.Expected.NameID {
				t.Errorf("NameID = %q, want %q", p.NameID, f.ctx.Expected.NameID)
			}
			if f.ctx.Expected.NameIDFormat != "" && p.NameIDFormat != f.ctx.Expected.NameIDFormat {
				t.Errorf("NameIDFormat = %q, want %q", p.NameIDFormat, f.ctx.Expected.NameIDFormat)
			}
			wantEmail := ""
			if f.ctx.Expected.Email != nil {
				wantEmail = *f.ctx.Expected.Email
			}
			if p.Email != wantEmail {
				t.Errorf("Email = %q, want %q", p.Email, wantEmail)
			}
			if got, want := normalizeAttrs(p.Attributes), normalizeAttrs(f.ctx.Expected.Attributes); !reflect.DeepEqual(got, want) {
				t.Errorf("Attributes =\n%v\nwant\n%v", got, want)
			}
			if p.Subject == "" || p.AssertionID == "" || p.Issuer != f.ctx.IdPEntityID {
				t.Errorf("profile facts missing: subject %q, assertion %q, issuer %q", p.Subject, p.AssertionID, p.Issuer)
			}

			t.Run("replayed", func(t *testing.T) {
				replay := newMemReplay()
				withCrewjamNow(f.validAt, func() {
					if _, err := sp.ValidateResponse(context.Background(), f.response, f.requestID(), replay); err != nil {
						t.Fatal(err)
					}
					_, err = sp.ValidateResponse(context.Background(), f.response, f.requestID(), replay)
				})
				wantReason(t, err, ReasonReplayed)
			})
			t.Run("unrelated certificate", func(t *testing.T) {
				other := readKey(t, "idp-b")
				bad := f.sp(t, clock, func(c *tenants.Connection) {
					if mod != nil {
						mod(c)
					}
					c.IdP.Certificates = []string{tenants.CertificatePEM(testCert(t, other, "unrelated", f.validAt.AddDate(-1, 0, 0), f.validAt.AddDate(1, 0, 0)))}
				})
				_, err := validateAt(bad, f.validAt, f.response, f.requestID())
				if hasKeyInfoCert(f.response) || f.ctx.Encrypted {
					wantReason(t, err, ReasonUntrustedCertificate)
				} else {
					wantReason(t, err, ReasonSignatureInvalid)
				}
			})
			t.Run("clock one day late", func(t *testing.T) {
				late := f.validAt.Add(24 * time.Hour)
				_, err := validateAt(f.sp(t, &fixedClock{t: late}, mod), late, f.response, f.requestID())
				wantReason(t, err, ReasonExpired)
			})
			t.Run("clock one day early", func(t *testing.T) {
				early := f.validAt.Add(-24 * time.Hour)
				_, err := validateAt(f.sp(t, &fixedClock{t: early}, mod), early, f.response, f.requestID())
				wantReason(t, err, ReasonNotYetValid)
			})
			if !f.ctx.Encrypted {
				t.Run("one character of NameID changed", func(t *testing.T) {
					tampered := tamperNameID(t, f.response)
					_, err := validateAt(sp, f.validAt, tampered, f.requestID())
					wantReason(t, err, ReasonSignatureInvalid)
				})
			}
		})
	}
}

var nameIDText = regexp.MustCompile(`(<(?:[A-Za-z0-9]+:)?NameID[^>]*>\s*)([^<\s])`)

// tamperNameID changes the first character of the first NameID.
func tamperNameID(t testing.TB, doc []byte) []byte {
	t.Helper()
	loc := nameIDText.FindSubmatchIndex(doc)
	if loc == nil {
		t.Fatal("no NameID to tamper with")
	}
	out := bytes.Clone(doc)
	i := loc[4]
	if out[i] == 'x' {
		out[i] = 'y'
	} else {
		out[i] = 'x'
	}
	return out
}

func hasKeyInfoCert(doc []byte) bool {
	return bytes.Contains(doc, []byte("X509Certificate>"))
}

func normalizeAttrs(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		vs := append([]string{}, v...)
		sort.Strings(vs)
		out[k] = vs
	}
	return out
}
