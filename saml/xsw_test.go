package saml

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
)

// xswParts are the pieces the templates in testdata/xsw assemble: parts of
// honest responses the simulator signed, and an evil assertion.
type xswParts struct {
	RootID, IssueInstant, Destination, InResponseTo string

	Issuer, Status                                 string
	ResponseSignature, ResponseSignatureOpen       string
	OriginalResponseUnsigned                       string
	SignedAssertion, OriginalUnsignedAssertion     string
	AssertionSignature, AssertionSignatureOpen     string
	EvilOpen, EvilOpenSameID, EvilIssuer, EvilRest string
}

var (
	reSignature   = regexp.MustCompile(`<ds:Signature [\s\S]*?</ds:Signature>`)
	reAssertion   = regexp.MustCompile(`<saml:Assertion [\s\S]*</saml:Assertion>`)
	reOpenTag     = regexp.MustCompile(`^<[^>]*>`)
	reIssuer      = regexp.MustCompile(`<saml:Issuer>[^<]*</saml:Issuer>`)
	reStatus      = regexp.MustCompile(`<samlp:Status>[\s\S]*?</samlp:Status>`)
	reAttrID      = regexp.MustCompile(`\bID="([^"]*)"`)
	reAttrOf      = func(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `="([^"]*)"`) }
	mallory       = "mallory@evil.example"
	honestAddress = "alice@example.com"
)

func stripSignatures(doc []byte) []byte { return reSignature.ReplaceAll(doc, nil) }

func assertionXML(t testing.TB, doc []byte) string {
	t.Helper()
	a := reAssertion.Find(doc)
	if a == nil {
		t.Fatal("no assertion")
	}
	return string(a)
}

func firstID(t testing.TB, s string) string {
	t.Helper()
	m := reAttrID.FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no ID")
	}
	return m[1]
}

func responseID(t testing.TB, doc []byte) string  { return firstID(t, string(doc)) }
func assertionID(t testing.TB, doc []byte) string { return firstID(t, assertionXML(t, doc)) }

func attrOf(s, name string) string {
	if m := reAttrOf(name).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// xswInputs returns, for one AuthnRequest, the pieces of a Response-signed
// and an Assertion-signed honest response (and a signed error response).
func xswInputs(t *testing.T, e *testEnv) (requestID string, parts xswParts, errParts xswParts) {
	t.Helper()
	info := e.request(t)
	get := func(sc Scenario) string {
		b64, err := e.sim.Respond(info, alice(), sc)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := DecodeResponse(b64, 0)
		if err != nil {
			t.Fatal(err)
		}
		return string(doc)
	}
	respSigned := get(Scenario{Sign: SignResponse})
	assertSigned := get(Scenario{Sign: SignAssertion})
	errSigned := get(Scenario{Name: ScenarioIdPError, Sign: SignResponse})

	fill := func(respDoc string) xswParts {
		open := reOpenTag.FindString(respDoc)
		p := xswParts{
			RootID:       firstID(t, open),
			IssueInstant: attrOf(open, "IssueInstant"), Destination: attrOf(open, "Destination"), InResponseTo: attrOf(open, "InResponseTo"),
			Issuer: reIssuer.FindString(respDoc), Status: reStatus.FindString(respDoc),
		}
		if sig := reSignature.FindString(respDoc); sig != "" && strings.Index(respDoc, sig) < strings.Index(respDoc, "<samlp:Status>") {
			p.ResponseSignature = sig
			p.ResponseSignatureOpen = strings.TrimSuffix(sig, "</ds:Signature>")
			p.OriginalResponseUnsigned = strings.Replace(respDoc, sig, "", 1)
		}
		return p
	}
	parts = fill(respSigned)
	errParts = fill(errSigned)
	signedA := assertionXML(t, []byte(assertSigned))
	parts.SignedAssertion = signedA
	parts.AssertionSignature = reSignature.FindString(signedA)
	parts.AssertionSignatureOpen = strings.TrimSuffix(parts.AssertionSignature, "</ds:Signature>")
	parts.OriginalUnsignedAssertion = string(stripSignatures([]byte(signedA)))

	evil := strings.ReplaceAll(parts.OriginalUnsignedAssertion, honestAddress, mallory)
	aOpen := reOpenTag.FindString(evil)
	parts.EvilOpenSameID = aOpen
	parts.EvilOpen = reAttrID.ReplaceAllString(aOpen, `ID="_evil"`)
	parts.EvilIssuer = reIssuer.FindString(evil)
	parts.EvilRest = strings.TrimSuffix(strings.TrimPrefix(evil, aOpen+parts.EvilIssuer), "</saml:Assertion>")
	errParts.EvilOpen, errParts.EvilIssuer, errParts.EvilRest = parts.EvilOpen, parts.EvilIssuer, parts.EvilRest
	errParts.RootID = "_evil_response"
	return info.ID, parts, errParts
}

func renderXSW(t *testing.T, name string, p xswParts) []byte {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "xsw", name+".xml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b.Bytes())
}

// TestXSW builds XSW1-XSW8 (and three single-assertion wrappings) from
// honest responses the simulator signed, and checks two layers:
//
//   - the whole pipeline rejects each with a specific reason (the pre-scan's
//     structural rules: one assertion, directly under the Response, no
//     nested Response);
//   - with the pre-scan taken away, the rest of the pipeline (crewjam with
//     our verifier, then our checks on the verified bytes) still rejects the
//     document, or uses the honest, signed assertion, never the evil one.
func TestXSW(t *testing.T) {
	e := newTestEnv(t)
	requestID, parts, errParts := xswInputs(t, e)
	for _, tc := range []struct {
		name     string
		parts    xswParts
		rootID   string
		full     Reason
		fullWhy  string
		inner    Reason // "" means the honest assertion was used
		innerWhy string
	}{
		{"xsw1", parts, "_evil_response", ReasonMultipleAssertions, "2 assertions", ReasonSignatureInvalid, "unexpected <Response> inside Signature"},
		{"xsw2", parts, "_evil_response", ReasonMultipleAssertions, "2 assertions", ReasonSignatureInvalid, "Reference URI"},
		{"xsw3", parts, "", ReasonMultipleAssertions, "2 assertions", "", ""},
		{"xsw4", parts, "", ReasonMultipleAssertions, "2 assertions", ReasonSignatureMissing, ""},
		{"xsw5", parts, "", ReasonMultipleAssertions, "2 assertions", ReasonSignatureInvalid, "does not verify"},
		{"xsw6", parts, "", ReasonMultipleAssertions, "2 assertions", ReasonSignatureInvalid, "unexpected <Assertion> inside Signature"},
		{"xsw7", parts, "", ReasonMultipleAssertions, "2 assertions", "", ""},
		{"xsw8", parts, "", ReasonMultipleAssertions, "2 assertions", ReasonSignatureInvalid, "unexpected <Object> inside Signature"},
		{"error-wrap", errParts, "", ReasonMalformed, "Response nested", ReasonSignatureInvalid, "unexpected <Response> inside Signature"},
		{"error-wrap-detached", errParts, "", ReasonMalformed, "Response nested", ReasonSignatureInvalid, "Reference URI"},
		{"extensions-only", parts, "", ReasonMalformed, "not a direct child", ReasonAssertionMissing, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.parts
			if tc.rootID != "" {
				p.RootID = tc.rootID
			}
			doc := renderXSW(t, tc.name, p)
			if tc.name != "extensions-only" && !bytes.Contains(doc, []byte(mallory)) {
				t.Fatal("template lost the evil assertion")
			}
			e.replay = newMemReplay()
			_, err := e.validate(doc, requestID)
			wantReason(t, err, tc.full)
			if !strings.Contains(err.Error(), tc.fullWhy) {
				t.Fatalf("detail %q lacks %q", err, tc.fullWhy)
			}

			var a *assertionFacts
			var rerr *RejectError
			withCrewjamNow(testNow, func() {
				a, _, rerr = e.sp.verify(doc, requestID, testNow)
			})
			if tc.inner == "" {
				if rerr != nil {
					t.Fatalf("inner layer: %v", rerr)
				}
				if strings.TrimSpace(a.NameID) != honestAddress {
					t.Fatalf("inner layer used NameID %q", a.NameID)
				}
				return
			}
			if rerr == nil {
				t.Fatalf("inner layer accepted %q", a.NameID)
			}
			wantReason(t, rerr, tc.inner)
			if !strings.Contains(rerr.Detail, tc.innerWhy) {
				t.Fatalf("inner detail %q lacks %q", rerr.Detail, tc.innerWhy)
			}
		})
	}
	t.Run("duplicate ID", func(t *testing.T) {
		// The Response takes the assertion's ID, so "#ID" could resolve to
		// either.
		c := e.craft("req-1")
		c.ResponseID = c.AssertionID
		_, err := e.validate(e.signed(t, c, "_assert1"), "req-1")
		wantReason(t, err, ReasonMalformed)
		if !strings.Contains(err.Error(), "more than one element") {
			t.Fatal(err)
		}
	})
	t.Run("signature in an unexpected place", func(t *testing.T) {
		c := e.craft("req-1")
		doc := e.signed(t, c, "_assert1")
		sig := reSignature.Find(doc)
		doc = bytes.Replace(doc, []byte("<saml:AuthnContext>"), append(append([]byte("<saml:AuthnContext>"), sig...), ' '), 1)
		_, err := e.validate(doc, "req-1")
		wantReason(t, err, ReasonMalformed)
	})
}
