package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Bounds on what the simulator accepts from the network. The inflate bound
// is the point: a few KiB of deflate can expand to gigabytes
// (CVE-2023-28119 in crewjam's own IdP was exactly this).
const (
	maxSimRequestBytes  = 256 << 10 // POST body / query string
	maxInflatedRequest  = 64 << 10  // an AuthnRequest is a few hundred bytes
	maxDeflatedSAMLBody = 64 << 10
)

// Handler serves the simulator: GET /metadata, and /sso for both bindings
// (GET: HTTP-Redirect, POST: HTTP-POST). /sso answers with a page whose
// form posts SAMLResponse and RelayState to the SP's ACS; the user presses
// its button. There is no script at all, so the page works under the
// strictest CSP.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(s.Metadata())
	})
	mux.HandleFunc("GET /sso", s.serveSSO)
	mux.HandleFunc("POST /sso", s.serveSSO)
	return mux
}

func (s *Simulator) serveSSO(w http.ResponseWriter, r *http.Request) {
	info, err := s.ParseAuthnRequest(r)
	if err != nil {
		http.Error(w, "bad SAML request: "+err.Error(), http.StatusBadRequest)
		return
	}
	user, sc := DefaultSimulatedUser(), Scenario{Name: ScenarioOK}
	if s.cfg.Decide != nil {
		if user, sc, err = s.cfg.Decide(info); err != nil {
			http.Error(w, "simulator: "+err.Error(), http.StatusForbidden)
			return
		}
	}
	resp, err := s.Respond(info, user, sc)
	if err != nil {
		http.Error(w, "simulator: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	err = postPage.Execute(&buf, postPageData{
		ACS: info.ACSURL, SAMLResponse: resp, RelayState: info.RelayState,
		User: user.NameID, SP: info.Issuer, Scenario: string(orOK(sc.Name)),
	})
	if err != nil {
		http.Error(w, "simulator: rendering: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; form-action "+originOf(info.ACSURL)+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func orOK(n ScenarioName) ScenarioName {
	if n == "" {
		return ScenarioOK
	}
	return n
}

func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "'none'"
	}
	return p.Scheme + "://" + p.Host
}

type postPageData struct {
	ACS, SAMLResponse, RelayState, User, SP, Scenario string
}

var postPage = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IdP simulator</title></head>
<body><main>
<h1>ssobroker IdP simulator</h1>
<p>Signing in <strong>{{.User}}</strong> to {{.SP}} (scenario: {{.Scenario}}).</p>
<form method="post" action="{{.ACS}}">
<input type="hidden" name="SAMLResponse" value="{{.SAMLResponse}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<button type="submit">Continue to the application</button>
</form>
</main></body></html>
`))

// ParseAuthnRequest reads an AuthnRequest from either binding, checks it
// against the registered SP (issuer known, ACS URL one of its own,
// Destination this simulator, signature valid when present and required
// when the SP's metadata says AuthnRequestsSigned) and returns it.
func (s *Simulator) ParseAuthnRequest(r *http.Request) (AuthnRequestInfo, error) {
	var raw []byte
	var info AuthnRequestInfo
	var redirectSig func(sp simSP) error
	switch r.Method {
	case http.MethodGet:
		if len(r.URL.RawQuery) > maxSimRequestBytes {
			return info, fmt.Errorf("query string is longer than %d bytes", maxSimRequestBytes)
		}
		qv := r.URL.Query()
		enc := qv.Get("SAMLRequest")
		if enc == "" {
			return info, errors.New("no SAMLRequest")
		}
		deflated, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return info, fmt.Errorf("SAMLRequest is not base64: %w", err)
		}
		if len(deflated) > maxDeflatedSAMLBody {
			return info, fmt.Errorf("SAMLRequest is longer than %d bytes", maxDeflatedSAMLBody)
		}
		if raw, err = inflateBounded(deflated, maxInflatedRequest); err != nil {
			return info, err
		}
		info.Binding, info.RelayState = BindingRedirect, qv.Get("RelayState")
		if qv.Get("Signature") != "" {
			redirectSig = func(sp simSP) error { return verifyRedirectSignature(r.URL.RawQuery, sp.signingCert) }
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(nil, r.Body, maxSimRequestBytes)
		if err := r.ParseForm(); err != nil {
			return info, fmt.Errorf("form: %w", err)
		}
		var err error
		if raw, err = base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLRequest")); err != nil || len(raw) == 0 {
			return info, errors.New("SAMLRequest is missing or not base64")
		}
		info.Binding, info.RelayState = BindingPost, r.PostForm.Get("RelayState")
	default:
		return info, fmt.Errorf("method %s", r.Method)
	}

	req, err := parseAuthnRequestXML(raw)
	if err != nil {
		return info, err
	}
	info.ID, info.Issuer, info.Destination = req.ID, strings.TrimSpace(req.Issuer), req.Destination
	info.NameIDFormat, info.ForceAuthn = req.NameIDPolicy.Format, parseBool(req.ForceAuthn)
	info.IssueInstant, _ = parseSAMLTime(req.IssueInstant)
	if info.ID == "" || req.Version != "2.0" {
		return info, errors.New("AuthnRequest needs an ID and Version 2.0")
	}
	sp, ok := s.lookupSP(info.Issuer)
	if !ok {
		return info, fmt.Errorf("unknown SP %q; register its metadata first", info.Issuer)
	}
	if info.Destination != "" && info.Destination != s.ssoURL {
		return info, fmt.Errorf("the Destination %q is not this IdP's SSO URL", info.Destination)
	}
	info.ACSURL = sp.acs[0]
	if req.ACS != "" {
		if !containsTrimmed(sp.acs, req.ACS) {
			// An IdP that posts assertions wherever the request says is an
			// open redirect for bearer tokens.
			return info, fmt.Errorf("AssertionConsumerServiceURL %q is not in the SP's metadata", req.ACS)
		}
		info.ACSURL = req.ACS
	}
	switch {
	case redirectSig != nil:
		if err := redirectSig(sp); err != nil {
			return info, err
		}
		info.Signed = true
	case info.Binding == BindingPost && req.Signed:
		if err := s.verifyPostSignature(raw, sp.signingCert); err != nil {
			return info, err
		}
		info.Signed = true
	}
	if sp.requireSigned && !info.Signed {
		return info, errors.New("the SP's metadata requires signed AuthnRequests")
	}
	return info, nil
}

type authnRequestXML struct {
	XMLName      xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:protocol AuthnRequest"`
	ID           string   `xml:"ID,attr"`
	Version      string   `xml:"Version,attr"`
	IssueInstant string   `xml:"IssueInstant,attr"`
	Destination  string   `xml:"Destination,attr"`
	ACS          string   `xml:"AssertionConsumerServiceURL,attr"`
	ForceAuthn   string   `xml:"ForceAuthn,attr"`
	Issuer       string   `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	NameIDPolicy struct {
		Format string `xml:"Format,attr"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:protocol NameIDPolicy"`
	Signed bool `xml:"-"`
}

func parseAuthnRequestXML(raw []byte) (authnRequestXML, error) {
	var req authnRequestXML
	res, err := scanDocument(raw, rootAny)
	if err != nil {
		return req, fmt.Errorf("AuthnRequest: %w", err)
	}
	if res.Root != (qname{nsProtocol, "AuthnRequest"}) {
		return req, fmt.Errorf("root element is {%s}%s, not an AuthnRequest", res.Root.space, res.Root.local)
	}
	if err := xml.Unmarshal(raw, &req); err != nil {
		return req, fmt.Errorf("AuthnRequest: %w", err)
	}
	req.Signed = len(res.SignatureMethods) > 0
	return req, nil
}

// inflateBounded undoes the redirect binding's DEFLATE, stopping at limit
// bytes of output.
func inflateBounded(b []byte, limit int) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("SAMLRequest is not valid DEFLATE: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("inflated SAMLRequest exceeds %d KiB", limit>>10)
	}
	return out, nil
}

// verifyRedirectSignature checks the HTTP-Redirect binding signature
// (bindings 3.4.4.1): over "SAMLRequest=..&RelayState=..&SigAlg=.." exactly
// as the parameters appear in the query string.
func verifyRedirectSignature(rawQuery string, cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("signed AuthnRequest, but the SP's metadata has no signing certificate")
	}
	params := map[string]string{}
	for _, part := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if _, dup := params[k]; dup {
			return fmt.Errorf("query parameter %s repeated", k)
		}
		params[k] = v
	}
	signed := "SAMLRequest=" + params["SAMLRequest"]
	if rs, ok := params["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + params["SigAlg"]
	alg, err := url.QueryUnescape(params["SigAlg"])
	if err != nil {
		return errors.New("the SigAlg parameter is not URL-encoded")
	}
	sigB64, err := url.QueryUnescape(params["Signature"])
	if err != nil {
		return errors.New("the Signature parameter is not URL-encoded")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("the Signature parameter is not base64")
	}
	var h crypto.Hash
	switch alg {
	case dsig.RSASHA256SignatureMethod:
		h = crypto.SHA256
	case dsig.RSASHA512SignatureMethod:
		h = crypto.SHA512
	default:
		return fmt.Errorf("SigAlg %q is not accepted", alg)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("SP signing key is not RSA")
	}
	hh := h.New()
	hh.Write([]byte(signed))
	if err := rsa.VerifyPKCS1v15(pub, h, hh.Sum(nil), sig); err != nil {
		return errors.New("AuthnRequest signature does not verify")
	}
	return nil
}

func (s *Simulator) verifyPostSignature(raw []byte, cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("signed AuthnRequest, but the SP's metadata has no signing certificate")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return err
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	ctx.IdAttribute = "ID"
	ctx.Clock = dsig.NewFakeClockAt(s.cfg.Clock.Now())
	if _, err := ctx.Validate(doc.Root()); err != nil {
		return fmt.Errorf("AuthnRequest signature does not verify: %w", err)
	}
	return nil
}
