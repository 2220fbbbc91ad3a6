package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// AuthnRequest bindings.
const (
	BindingRedirect = "redirect"
	BindingPost     = "post"
)

// AuthnRequest is one SAML AuthnRequest, ready to send. The broker stores
// ID (and ExpiresAt) with the login: ValidateResponse needs it back as
// requestID.
type AuthnRequest struct {
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Binding is BindingRedirect or BindingPost.
	Binding string
	// RedirectURL is the IdP URL with SAMLRequest, RelayState and, when
	// requests are signed, SigAlg and Signature (redirect binding).
	RedirectURL string
	// PostURL, SAMLRequest (base64 XML) and RelayState are the form the
	// broker renders for the POST binding. crewjam's own form submits
	// itself with inline script, which our CSP forbids.
	PostURL     string
	SAMLRequest string
	RelayState  string
}

// maxRelayState is the SAML bindings limit (3.4.3, 3.5.3).
const maxRelayState = 80

// NewAuthnRequest builds an AuthnRequest for the connection's IdP: the
// HTTP-Redirect binding when the IdP offers it, else HTTP-POST; signed with
// RSA-SHA256 when the connection's policy says so; asking for the
// connection's NameID format (or the preset default, never transient) with
// AllowCreate; ForceAuthn when forceAuthn.
//
// relayState must be an opaque URL-safe token ([A-Za-z0-9_-], at most 80
// bytes): crewjam appends it to the redirect URL unescaped, and it comes
// back from the IdP untouched.
func (sp *ServiceProvider) NewAuthnRequest(relayState string, forceAuthn bool) (AuthnRequest, error) {
	if len(relayState) > maxRelayState {
		return AuthnRequest{}, fmt.Errorf("saml: RelayState is %d bytes; at most %d", len(relayState), maxRelayState)
	}
	for i := 0; i < len(relayState); i++ {
		if !urlSafe(relayState[i]) {
			return AuthnRequest{}, fmt.Errorf("saml: RelayState may only contain A-Z, a-z, 0-9, _ and -")
		}
	}
	id, err := newSAMLID(sp.opts.Random)
	if err != nil {
		return AuthnRequest{}, fmt.Errorf("saml: AuthnRequest ID: %w", err)
	}
	now := sp.opts.Clock.Now().UTC().Truncate(time.Millisecond)
	out := AuthnRequest{ID: id, IssuedAt: now, ExpiresAt: now.Add(sp.opts.RequestTTL), RelayState: relayState}

	dest := sp.conn.IdP.SSORedirectURL
	out.Binding = BindingRedirect
	if dest == "" {
		dest, out.Binding = sp.conn.IdP.SSOPostURL, BindingPost
	}
	if dest == "" {
		return AuthnRequest{}, fmt.Errorf("saml: connection %s has no IdP SSO URL", sp.conn.ID)
	}

	allowCreate := true
	policy := &crewsaml.NameIDPolicy{AllowCreate: &allowCreate}
	if sp.nameIDFmt != nameIDUnspecified {
		f := sp.nameIDFmt
		policy.Format = &f
	}
	req := crewsaml.AuthnRequest{
		ID:                          id,
		Version:                     "2.0",
		IssueInstant:                now,
		Destination:                 dest,
		AssertionConsumerServiceURL: sp.acsURL,
		ProtocolBinding:             crewsaml.HTTPPostBinding,
		Issuer: &crewsaml.Issuer{
			Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity",
			Value:  sp.entityID,
		},
		NameIDPolicy: policy,
	}
	if forceAuthn {
		req.ForceAuthn = &forceAuthn
	}
	crew := sp.crew

	if out.Binding == BindingRedirect {
		u, err := sp.redirectURL(dest, &req, relayState)
		if err != nil {
			return AuthnRequest{}, fmt.Errorf("saml: redirect AuthnRequest: %w", err)
		}
		out.RedirectURL = u
		return out, nil
	}
	if crew.SignatureMethod != "" {
		if err := crew.SignAuthnRequest(&req); err != nil {
			return AuthnRequest{}, fmt.Errorf("saml: signing AuthnRequest: %w", err)
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.Element())
	xmlBytes, err := doc.WriteToBytes()
	if err != nil {
		return AuthnRequest{}, fmt.Errorf("saml: AuthnRequest XML: %w", err)
	}
	out.PostURL = dest
	out.SAMLRequest = base64.StdEncoding.EncodeToString(xmlBytes)
	return out, nil
}

// redirectURL encodes an AuthnRequest for the HTTP-Redirect binding
// (bindings 3.4.4): DEFLATE, base64, URL-encode, and when requests are
// signed, an RSA-SHA256 signature over exactly
// "SAMLRequest=..&RelayState=..&SigAlg=..". We do this rather than call
// crewjam's AuthnRequest.Redirect, which allocates a fresh level-9
// compressor (~800 KiB) per request and also signs any query string the
// IdP's SSO URL already carries (Google's ?idpid=), which IdPs then fail to
// verify.
func (sp *ServiceProvider) redirectURL(dest string, req *crewsaml.AuthnRequest, relayState string) (string, error) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", err
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.Element())
	var deflated bytes.Buffer
	w, _ := sp.deflaters.Get().(*flate.Writer)
	if w == nil {
		if w, err = flate.NewWriter(&deflated, flate.BestCompression); err != nil {
			return "", err
		}
	} else {
		w.Reset(&deflated)
	}
	if _, err := doc.WriteTo(w); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	sp.deflaters.Put(w)

	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflated.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if sp.conn.Policy.SignAuthnRequests {
		q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
		sum := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(nil, sp.key, crypto.SHA256, sum[:])
		if err != nil {
			return "", err
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String(), nil
}

// newSAMLID returns "id-" and 160 random bits in hex: an xs:ID (it must not
// start with a digit) that cannot be guessed.
func newSAMLID(random io.Reader) (string, error) {
	var b [20]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", err
	}
	return "id-" + hex.EncodeToString(b[:]), nil
}
