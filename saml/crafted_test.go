package saml

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"testing"
	"text/template"
	"time"
)

// craft fills testdata/crafted/response.xml.tmpl: a hand-written Response
// whose every field a test can set, signed at test time with the
// simulator's key (signXML).
type craft struct {
	ResponseID, AssertionID             string
	IssueInstant, AssertionIssueInstant string
	Destination, InResponseTo           string
	ResponseIssuer, Issuer              string
	NameID, NameIDFormat                string
	NameIDRaw                           string // inserted verbatim; defaults to NameID escaped
	Recipient, SCDInResponseTo          string
	SCDNotOnOrAfter                     string
	NotBefore, NotOnOrAfter             string
	Audiences                           [][]string
	StatusCode                          string
	NoAssertion, NoSubject              bool
	NoConfirmationData, NoConditions    bool
	Attributes                          []attribute
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

var craftTemplate = template.Must(template.New("response.xml.tmpl").Funcs(template.FuncMap{"x": xmlText}).
	ParseFiles(filepath.Join("testdata", "crafted", "response.xml.tmpl")))

func ts(t time.Time) string { return t.UTC().Format(samlTime) }

// craft returns a valid response for requestID from the env's IdP.
func (e *testEnv) craft(requestID string) *craft {
	now := e.clock.Now()
	return &craft{
		ResponseID: "_resp1", AssertionID: "_assert1",
		IssueInstant: ts(now), AssertionIssueInstant: ts(now),
		Destination: e.sp.ACSURL(), InResponseTo: requestID,
		ResponseIssuer: e.sim.EntityID(), Issuer: e.sim.EntityID(),
		NameID: "alice@example.com", NameIDFormat: nameIDEmail,
		Recipient: e.sp.ACSURL(), SCDInResponseTo: requestID, SCDNotOnOrAfter: ts(now.Add(5 * time.Minute)),
		NotBefore: ts(now), NotOnOrAfter: ts(now.Add(5 * time.Minute)),
		Audiences:  [][]string{{e.sp.EntityID()}},
		StatusCode: statusSuccess,
		Attributes: []attribute{{Name: "email", Values: []string{"alice@example.com"}}, {Name: "firstName", Values: []string{"Alice"}}},
	}
}

func (c *craft) render(t testing.TB) []byte {
	t.Helper()
	if c.NameIDRaw == "" {
		c.NameIDRaw = xmlText(c.NameID)
	}
	var b bytes.Buffer
	if err := craftTemplate.Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// idpSigner signs as the env's IdP, certificate in KeyInfo.
func (e *testEnv) idpSigner() signer {
	return signer{key: e.sim.key, keyInfo: e.sim.cert}
}

// signed renders c and signs the given IDs (inner first) as the IdP.
func (e *testEnv) signed(t testing.TB, c *craft, ids ...string) []byte {
	t.Helper()
	return signWith(t, e.idpSigner(), c.render(t), ids...)
}

func signWith(t testing.TB, s signer, doc []byte, ids ...string) []byte {
	t.Helper()
	out, err := signXML(doc, s, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
