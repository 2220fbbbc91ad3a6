package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// Native fuzz targets. Seeds: every captured fixture, simulator output for
// each scenario, and the hand-written inputs in testdata/fuzz/<Name>/.
// Run one with, e.g.:
//
//	go test -run '^$' -fuzz FuzzValidateResponse -fuzztime 15s ./saml

func fixtureFiles(f *testing.F, name string) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fixtures", "*", name))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func simulatorSeeds(f *testing.F, e *testEnv) [][]byte {
	f.Helper()
	var out [][]byte
	for _, sc := range []Scenario{{}, {Sign: SignAssertion}, {Sign: SignResponse}, {Encrypt: EncryptAES256CBC},
		{Name: ScenarioIdPError}, {Name: ScenarioUnsigned}, {Name: ScenarioSHA1}, {Name: ScenarioUnsolicited}} {
		_, doc := e.login(f, alice(), sc)
		out = append(out, doc)
	}
	return out
}

func FuzzValidateResponse(f *testing.F) {
	e := newTestEnv(f)
	for _, b := range fixtureFiles(f, "response.xml") {
		f.Add(b)
	}
	for _, b := range simulatorSeeds(f, e) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		requestID, _ := InResponseTo(doc)
		withCrewjamNow(testNow, func() {
			p, err := e.sp.ValidateResponse(context.Background(), doc, requestID, acceptAll{})
			if err == nil && (p.Subject == "" || p.AssertionID == "") {
				t.Fatalf("accepted without subject or assertion ID: %+v", p)
			}
			if err != nil {
				if _, ok := err.(*RejectError); !ok {
					t.Fatalf("non-reject error %T: %v", err, err)
				}
			}
		})
	})
}

func FuzzInResponseTo(f *testing.F) {
	e := newTestEnv(f)
	for _, b := range fixtureFiles(f, "response.xml") {
		f.Add(b)
	}
	for _, b := range simulatorSeeds(f, e) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, _ = InResponseTo(doc)
		if res, err := scanDocument(doc, rootResponse); err == nil {
			_ = res.structureError()
			if res.Assertion != nil && res.Assertion.Elements > res.Response.Elements {
				t.Fatalf("assertion has %d elements, document %d", res.Assertion.Elements, res.Response.Elements)
			}
		}
		_, _ = scanDocument(doc, rootAssertion)
	})
}

func FuzzParseIdPMetadata(f *testing.F) {
	for _, b := range fixtureFiles(f, "idp-metadata.xml") {
		f.Add(b)
	}
	e := newTestEnv(f)
	f.Add(e.sim.Metadata())
	f.Add(mustMetadata(f, e.sp))
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := ParseIdPMetadata(doc)
		if err == nil && (cfg.EntityID == "" || len(cfg.Certificates) == 0) {
			t.Fatalf("accepted without entity ID or certificate: %+v", cfg)
		}
		_ = (&Simulator{sps: map[string]simSP{}}).RegisterServiceProvider(doc)
	})
}

// FuzzInflate feeds the redirect binding's SAMLRequest decoder: DEFLATE
// bounded to 64 KiB, then the AuthnRequest parser.
func FuzzInflate(f *testing.F) {
	e := newTestEnv(f)
	req, err := e.sp.NewAuthnRequest("r", true)
	if err != nil {
		f.Fatal(err)
	}
	u, _ := url.Parse(req.RedirectURL)
	deflated, _ := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	f.Add(deflated)
	var bomb bytes.Buffer
	w, _ := flate.NewWriter(&bomb, flate.BestCompression)
	_, _ = w.Write(bytes.Repeat([]byte("<"), 1<<20))
	_ = w.Close()
	f.Add(bomb.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := inflateBounded(data, maxInflatedRequest)
		if err != nil {
			return
		}
		if len(out) > maxInflatedRequest {
			t.Fatalf("inflated %d bytes", len(out))
		}
		_, _ = parseAuthnRequestXML(out)
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add("PHNhbWxwOlJlc3BvbnNlLz4=", 0)
	f.Add("PHNh\r\nbWxw OlJl", 10)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max > 1<<20 {
			max = 1 << 20
		}
		b, err := DecodeResponse(s, max)
		limit := max
		if limit <= 0 {
			limit = DefaultMaxResponseBytes
		}
		if err == nil && len(b) > limit {
			t.Fatalf("decoded %d bytes past the %d limit", len(b), limit)
		}
	})
}
