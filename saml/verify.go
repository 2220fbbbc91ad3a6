package saml

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
)

// minRSABits is the smallest RSA signing key accepted without the
// connection's legacy opt-in (allow_sha1, which also admits 1024-bit keys).
const minRSABits = 2048

// verifier is crewjam's SignatureVerifier for one validation call. crewjam
// calls it after it has found a Signature child and detached the signed
// element; we ignore the ValidationContext crewjam prepared and apply our
// own rules:
//
//   - the signature must have the shape the SAML profile allows: one
//     SignedInfo, one SignatureValue, at most one KeyInfo, nothing else (no
//     Object to hide a wrapped copy in), exactly one Reference, and that
//     Reference must point at the signed element's own ID;
//   - signature and digest algorithms must pass the connection's policy;
//   - only the connection's configured certificates verify. A certificate
//     in KeyInfo is never trusted: KeyInfo is removed before verification
//     and each configured certificate is tried (the one matching KeyInfo
//     first). This also covers IdPs that send no KeyInfo at all while
//     several certificates are configured, which goxmldsig alone refuses;
//   - certificate validity is checked against the per-call time from the
//     SP's Clock, not crewjam's global clock.
//
// It records each element whose signature verified, with the canonical
// content goxmldsig verified, so that the data we use afterwards comes from
// exactly the bytes the signature covers.
type verifier struct {
	sp       *ServiceProvider
	now      time.Time
	clock    *dsig.Clock
	verified []*etree.Element // goxmldsig's verified, re-parsed canonical elements
	err      *RejectError     // first rejection, with its reason
}

func newVerifier(sp *ServiceProvider, now time.Time) *verifier {
	return &verifier{sp: sp, now: now, clock: dsig.NewFakeClockAt(now)}
}

// VerifySignature implements crewsaml.SignatureVerifier.
func (v *verifier) VerifySignature(_ *dsig.ValidationContext, el *etree.Element) error {
	out, err := v.verify(el)
	if err != nil {
		if v.err == nil {
			v.err = err
		}
		return err
	}
	v.verified = append(v.verified, out)
	return nil
}

func (v *verifier) verify(el *etree.Element) (*etree.Element, *RejectError) {
	id := el.SelectAttrValue("ID", "")
	if id == "" {
		return nil, reject(ReasonSignatureInvalid, "signed <%s> has no ID", el.Tag)
	}
	sig, err := onlyChild(el, nsDSig, "Signature")
	if err != nil {
		return nil, rejectWrap(ReasonSignatureInvalid, err, "<%s>: %v", el.Tag, err)
	}
	if rerr := v.checkShape(sig, id); rerr != nil {
		return nil, rerr
	}

	// KeyInfo only tells us which configured certificate to try first.
	var offered *x509.Certificate
	if ki := firstChild(sig, nsDSig, "KeyInfo"); ki != nil {
		offered = v.keyInfoCert(ki)
		sig.RemoveChild(ki) // el is crewjam's detached copy, ours to change
	}
	certs := v.sp.idpCerts
	if offered != nil {
		if i := v.sp.certIndex(offered); i > 0 {
			certs = append([]*x509.Certificate{certs[i]}, append(append([]*x509.Certificate{}, certs[:i]...), certs[i+1:]...)...)
		}
	}

	var expired []*x509.Certificate
	var lastErr error
	for _, c := range certs {
		ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}})
		ctx.IdAttribute = "ID"
		ctx.Clock = v.clock
		out, err := ctx.Validate(el)
		if err == nil {
			if rerr := v.checkKey(c); rerr != nil {
				return nil, rerr
			}
			return out, nil
		}
		lastErr = err
		switch {
		case strings.Contains(err.Error(), "traversal limit"):
			return nil, rejectWrap(ReasonTooLarge, err, "signed <%s> is too large for the XML signature library (about %d elements); reduce group claims at the IdP", el.Tag, dsigTraversalLimit)
		case strings.Contains(err.Error(), "Cert is not valid at this time"):
			expired = append(expired, c)
		}
	}
	switch {
	case offered != nil && v.sp.certIndex(offered) < 0:
		return nil, rejectWrap(ReasonUntrustedCertificate, lastErr, "<%s> is signed with certificate %s, which is not configured for connection %s", el.Tag, describeCert(offered), v.sp.conn.ID)
	case len(expired) == len(certs):
		return nil, rejectWrap(ReasonUntrustedCertificate, lastErr, "every configured IdP certificate is outside its validity period at %s: %s", stamp(v.now), describeCert(expired[0]))
	default:
		return nil, rejectWrap(ReasonSignatureInvalid, lastErr, "signature on <%s> does not verify with any of the %d configured IdP certificates", el.Tag, len(certs))
	}
}

// checkShape enforces the SAML signature profile (SAML core 5.4) on one
// Signature element before any cryptography runs.
func (v *verifier) checkShape(sig *etree.Element, id string) *RejectError {
	counts := map[string]int{}
	for _, c := range sig.ChildElements() {
		if c.NamespaceURI() != nsDSig {
			return reject(ReasonSignatureInvalid, "unexpected <%s> inside Signature", c.Tag)
		}
		switch c.Tag {
		case "SignedInfo", "SignatureValue", "KeyInfo":
			counts[c.Tag]++
		default:
			// An Object (or anything else) is where XSW variants hide a
			// copy of the original element.
			return reject(ReasonSignatureInvalid, "unexpected <%s> inside Signature", c.Tag)
		}
	}
	if counts["SignedInfo"] != 1 || counts["SignatureValue"] != 1 || counts["KeyInfo"] > 1 {
		return reject(ReasonSignatureInvalid, "Signature must have one SignedInfo, one SignatureValue and at most one KeyInfo")
	}
	si := firstChild(sig, nsDSig, "SignedInfo")
	var methods, digests []string
	refs := 0
	for _, c := range si.ChildElements() {
		switch c.Tag {
		case "CanonicalizationMethod":
			if !allowedC14N[c.SelectAttrValue("Algorithm", "")] {
				return reject(ReasonSignatureInvalid, "canonicalization method %s is not allowed", q(c.SelectAttrValue("Algorithm", "")))
			}
		case "SignatureMethod":
			methods = append(methods, c.SelectAttrValue("Algorithm", ""))
		case "Reference":
			refs++
			// The one Reference must point at the element carrying the
			// Signature: an enveloped signature over something else is
			// the essence of signature wrapping.
			if uri := c.SelectAttrValue("URI", ""); uri != "#"+id {
				return reject(ReasonSignatureInvalid, "signature Reference URI is %s, want %s", q(uri), q("#"+id))
			}
			for _, rc := range c.ChildElements() {
				switch rc.Tag {
				case "DigestMethod":
					digests = append(digests, rc.SelectAttrValue("Algorithm", ""))
				case "Transforms":
					for _, tr := range rc.ChildElements() {
						alg := tr.SelectAttrValue("Algorithm", "")
						if alg != string(dsig.EnvelopedSignatureAltorithmId) && !allowedC14N[alg] {
							return reject(ReasonSignatureInvalid, "transform %s is not allowed", q(alg))
						}
					}
				}
			}
		}
	}
	if len(methods) != 1 || refs != 1 || len(digests) != 1 {
		return reject(ReasonSignatureInvalid, "SignedInfo must have exactly one SignatureMethod and one Reference with one DigestMethod")
	}
	return checkAlgorithms(methods, digests, v.sp.conn.Policy.AllowSHA1)
}

func (v *verifier) checkKey(c *x509.Certificate) *RejectError {
	if v.sp.conn.Policy.AllowSHA1 {
		return nil
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return reject(ReasonInsecureAlgorithm, "IdP signing key is RSA-%d; at least %d bits are required (allow_sha1 also admits legacy keys)", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return reject(ReasonInsecureAlgorithm, "IdP signing key is ECDSA-%d; at least P-256 is required", k.Curve.Params().BitSize)
		}
	}
	return nil
}

var allowedC14N = map[string]bool{
	string(dsig.CanonicalXML10ExclusiveAlgorithmId):             true,
	string(dsig.CanonicalXML10ExclusiveWithCommentsAlgorithmId): true,
	string(dsig.CanonicalXML11AlgorithmId):                      true,
	string(dsig.CanonicalXML11WithCommentsAlgorithmId):          true,
	string(dsig.CanonicalXML10RecAlgorithmId):                   true,
	string(dsig.CanonicalXML10WithCommentsAlgorithmId):          true,
}

// keyInfoCert returns the certificate a KeyInfo offers: the configured one
// with the same bytes (no parsing on the common path), else the parsed
// stranger (for the operator's message), else nil.
func (v *verifier) keyInfoCert(ki *etree.Element) *x509.Certificate {
	x509Data := firstChild(ki, nsDSig, "X509Data")
	if x509Data == nil {
		return nil
	}
	certEl := firstChild(x509Data, nsDSig, "X509Certificate")
	if certEl == nil {
		return nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certEl.Text()), ""))
	if err != nil {
		return nil
	}
	for _, c := range v.sp.idpCerts {
		if bytes.Equal(c.Raw, der) {
			return c
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	return c
}

func firstChild(el *etree.Element, ns, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

func onlyChild(el *etree.Element, ns, tag string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			if found != nil {
				return nil, fmt.Errorf("more than one %s", tag)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no %s", tag)
	}
	return found, nil
}

func elementBytes(el *etree.Element) []byte {
	var buf bytes.Buffer
	el.WriteTo(&buf, &etree.WriteSettings{})
	return buf.Bytes()
}

// decryptAssertion decrypts an EncryptedAssertion the way crewjam does
// (EncryptedKey beside EncryptedData, Okta style, or inside its KeyInfo),
// with the connection's SP key.
func (sp *ServiceProvider) decryptAssertion(enc *etree.Element) ([]byte, error) {
	data, err := onlyChild(enc, nsXMLEnc, "EncryptedData")
	if err != nil {
		return nil, fmt.Errorf("EncryptedAssertion: %w", err)
	}
	var key any = sp.key
	if ek := firstChild(enc, nsXMLEnc, "EncryptedKey"); ek != nil {
		if key, err = xmlenc.Decrypt(sp.key, ek); err != nil {
			return nil, fmt.Errorf("decrypting the key: %w", err)
		}
	}
	plain, err := xmlenc.Decrypt(key, data)
	if err != nil {
		return nil, fmt.Errorf("decrypting the assertion: %w", err)
	}
	if err := xrv.Validate(bytes.NewReader(plain)); err != nil {
		return nil, fmt.Errorf("decrypted assertion: %w", err)
	}
	return plain, nil
}
