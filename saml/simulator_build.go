package saml

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// samlTime is how the simulator writes xs:dateTime: UTC, milliseconds.
const samlTime = "2006-01-02T15:04:05.000Z"

// signer signs XML elements as an IdP does: enveloped, exclusive c14n,
// RSA-SHA256 (or SHA-1 for the sha1 scenario), with the certificate in
// KeyInfo.
type signer struct {
	key     crypto.Signer
	keyInfo *x509.Certificate // certificate put in KeyInfo; nil: no KeyInfo
	method  string            // dsig signature method URI
}

// sign adds an enveloped Signature to el, right after its Issuer as the
// schema wants it. The digest is computed over el as it stands in its
// document (namespaces inherited from ancestors included), which is what a
// verifier canonicalizes.
func (s signer) sign(el *etree.Element) error {
	var certs [][]byte
	if s.keyInfo != nil {
		certs = [][]byte{s.keyInfo.Raw}
	}
	ctx, err := dsig.NewSigningContext(s.key, certs)
	if err != nil {
		return err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	method := s.method
	if method == "" {
		method = dsig.RSASHA256SignatureMethod
	}
	if err := ctx.SetSignatureMethod(method); err != nil {
		return err
	}
	// Canonicalization rewrites the element in place, so sign a copy.
	// Inside a document the copy must carry the inherited namespace
	// declarations; a root (or standalone) element needs none, and a plain
	// copy avoids goxmldsig's 1000-node traversal budget for large
	// documents.
	detached := el.Copy()
	if el.Parent() != nil && el.Parent().Parent() != nil {
		nsCtx, err := etreeutils.NSBuildParentContext(el)
		if err != nil {
			return err
		}
		if detached, err = etreeutils.NSDetatch(nsCtx, el); err != nil {
			return err
		}
	}
	sig, err := ctx.ConstructSignature(detached, true)
	if err != nil {
		return err
	}
	if s.keyInfo == nil {
		if ki := firstChild(sig, nsDSig, "KeyInfo"); ki != nil {
			sig.RemoveChild(ki)
		}
	}
	pos := 0
	for i, c := range el.Child {
		if ce, ok := c.(*etree.Element); ok && ce.Tag == "Issuer" {
			pos = i + 1
			break
		}
	}
	el.InsertChildAt(pos, sig)
	return nil
}

// signXML signs the elements with the given IDs, in order (sign an
// assertion before the response around it), and returns the document. The
// simulator's scenarios use it for hand-crafted documents as well.
func signXML(doc []byte, s signer, ids ...string) ([]byte, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, err
	}
	for _, id := range ids {
		el := d.FindElement(fmt.Sprintf("//[@ID='%s']", id))
		if el == nil {
			return nil, fmt.Errorf("no element with ID %q", id)
		}
		if err := s.sign(el); err != nil {
			return nil, fmt.Errorf("signing %q: %w", id, err)
		}
	}
	return d.WriteToBytes()
}

// responseSpec is everything that goes into one simulated Response.
type responseSpec struct {
	id, assertionID  string
	issuer           string // Response and Assertion Issuer
	destination      string // "" omits it
	inResponseTo     string // "" omits it
	recipient        string
	audience         string
	issueInstant     time.Time
	notBefore        time.Time
	notOnOrAfter     time.Time
	sessionIndex     string
	user             SimulatedUser
	statusCode       string
	subStatusCode    string
	statusMessage    string
	signAssertion    *signer
	signResponse     *signer
	encryptTo        *x509.Certificate
	encryption       Encryption
	omitSubject      bool
	omitConditions   bool
	omitConfirmation bool
}

func buildResponse(sp responseSpec) ([]byte, error) {
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", nsProtocol)
	resp.CreateAttr("xmlns:saml", nsAssertion)
	resp.CreateAttr("ID", sp.id)
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", sp.issueInstant.UTC().Format(samlTime))
	if sp.destination != "" {
		resp.CreateAttr("Destination", sp.destination)
	}
	if sp.inResponseTo != "" {
		resp.CreateAttr("InResponseTo", sp.inResponseTo)
	}
	resp.CreateElement("saml:Issuer").SetText(sp.issuer)
	status := resp.CreateElement("samlp:Status")
	code := status.CreateElement("samlp:StatusCode")
	code.CreateAttr("Value", sp.statusCode)
	if sp.subStatusCode != "" {
		code.CreateElement("samlp:StatusCode").CreateAttr("Value", sp.subStatusCode)
	}
	if sp.statusMessage != "" {
		status.CreateElement("samlp:StatusMessage").SetText(sp.statusMessage)
	}

	if sp.statusCode == statusSuccess {
		a := buildAssertion(sp)
		if sp.signAssertion != nil {
			if err := sp.signAssertion.sign(a); err != nil {
				return nil, fmt.Errorf("signing the assertion: %w", err)
			}
		}
		if sp.encryptTo != nil {
			enc, err := encryptAssertion(a, sp.encryptTo, sp.encryption)
			if err != nil {
				return nil, err
			}
			resp.AddChild(enc)
		} else {
			resp.AddChild(a)
		}
	}
	if sp.signResponse != nil {
		if err := sp.signResponse.sign(resp); err != nil {
			return nil, fmt.Errorf("signing the response: %w", err)
		}
	}
	return doc.WriteToBytes()
}

// buildAssertion makes a standalone Assertion that declares its own
// namespace, so that its signature survives being moved into the Response
// (or into an EncryptedAssertion).
func buildAssertion(sp responseSpec) *etree.Element {
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("ID", sp.assertionID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", sp.issueInstant.UTC().Format(samlTime))
	a.CreateElement("saml:Issuer").SetText(sp.issuer)
	u := sp.user
	if !sp.omitSubject {
		subj := a.CreateElement("saml:Subject")
		nid := subj.CreateElement("saml:NameID")
		if u.NameIDFormat != "" {
			nid.CreateAttr("Format", u.NameIDFormat)
		}
		nid.SetText(u.NameID)
		sc := subj.CreateElement("saml:SubjectConfirmation")
		sc.CreateAttr("Method", bearerMethod)
		if !sp.omitConfirmation {
			scd := sc.CreateElement("saml:SubjectConfirmationData")
			if sp.inResponseTo != "" {
				scd.CreateAttr("InResponseTo", sp.inResponseTo)
			}
			scd.CreateAttr("NotOnOrAfter", sp.notOnOrAfter.UTC().Format(samlTime))
			scd.CreateAttr("Recipient", sp.recipient)
		}
	}
	if !sp.omitConditions {
		cond := a.CreateElement("saml:Conditions")
		cond.CreateAttr("NotBefore", sp.notBefore.UTC().Format(samlTime))
		cond.CreateAttr("NotOnOrAfter", sp.notOnOrAfter.UTC().Format(samlTime))
		cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(sp.audience)
	}
	authn := a.CreateElement("saml:AuthnStatement")
	authn.CreateAttr("AuthnInstant", sp.issueInstant.UTC().Format(samlTime))
	authn.CreateAttr("SessionIndex", sp.sessionIndex)
	authn.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")

	attrs := userAttributes(u)
	if len(attrs) > 0 {
		st := a.CreateElement("saml:AttributeStatement")
		for _, at := range attrs {
			el := st.CreateElement("saml:Attribute")
			el.CreateAttr("Name", at.Name)
			if at.FriendlyName != "" {
				el.CreateAttr("FriendlyName", at.FriendlyName)
			}
			el.CreateAttr("NameFormat", at.format)
			for _, v := range at.Values {
				el.CreateElement("saml:AttributeValue").SetText(v)
			}
		}
	}
	return a
}

type simAttribute struct {
	attribute
	format string
}

const (
	attrFormatURI         = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	attrFormatBasic       = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	attrFormatUnspecified = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
)

// userAttributes renders a user in the attribute style of an IdP family.
func userAttributes(u SimulatedUser) []simAttribute {
	var out []simAttribute
	add := func(name, friendly, format string, values ...string) {
		var vs []string
		for _, v := range values {
			if v != "" {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			out = append(out, simAttribute{attribute{Name: name, FriendlyName: friendly, Values: vs}, format})
		}
	}
	switch u.Style {
	case StyleEntra:
		f := attrFormatUnspecified
		oid := u.ObjectID
		if oid == "" {
			oid = derivedUUID(u.NameID)
		}
		add(msTenantIDClaim, "", f, u.TenantID)
		add(msObjectID, "", f, oid)
		add(msDisplayName, "", f, u.DisplayName)
		add(claimEmail, "", f, u.Email)
		add(claimGivenName, "", f, u.GivenName)
		add(claimSurname, "", f, u.FamilyName)
		add(claimName, "", f, firstNonEmpty(u.Email, u.NameID))
		if u.GroupsOverageLink != "" {
			add(msGroupsLink, "", f, u.GroupsOverageLink)
		} else {
			add(msGroups, "", f, u.Groups...)
		}
	case StyleGeneric:
		f := attrFormatURI
		add(oidMail, "mail", f, u.Email)
		add(oidGivenName, "givenName", f, u.GivenName)
		add(oidSurname, "sn", f, u.FamilyName)
		add(oidDisplayName, "displayName", f, u.DisplayName)
		add(oidIsMemberOf, "isMemberOf", f, u.Groups...)
	default: // okta
		f := attrFormatBasic
		add("email", "", f, u.Email)
		add("firstName", "", f, u.GivenName)
		add("lastName", "", f, u.FamilyName)
		add("displayName", "", f, u.DisplayName)
		add("groups", "", f, u.Groups...)
	}
	names := make([]string, 0, len(u.Attributes))
	for n := range u.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, simAttribute{attribute{Name: n, Values: u.Attributes[n]}, attrFormatUnspecified})
	}
	return out
}

const msTenantIDClaim = "http://schemas.microsoft.com/identity/claims/tenantid"

// derivedUUID gives a stable UUID-shaped objectidentifier for a simulated
// Entra user.
func derivedUUID(seed string) string {
	h := sha256.Sum256([]byte("ssobroker-simulator:" + seed))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// encryptAssertion encrypts a (signed) assertion to the SP certificate
// with RSA-OAEP key transport, as Okta and AD FS do.
func encryptAssertion(a *etree.Element, to *x509.Certificate, enc Encryption) (*etree.Element, error) {
	d := etree.NewDocument()
	d.SetRoot(a.Copy())
	plain, err := d.WriteToBytes()
	if err != nil {
		return nil, err
	}
	e := xmlenc.OAEP()
	e.DigestMethod = &xmlenc.SHA1 // rsa-oaep-mgf1p is defined with SHA-1 as its digest
	switch enc {
	case EncryptAES128GCM:
		e.BlockCipher = aes128GCM{}
	default:
		e.BlockCipher = xmlenc.AES256CBC
	}
	data, err := e.Encrypt(to, plain, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypting the assertion: %w", err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	return ea, nil
}

// aes128GCM encrypts XML Encryption 1.1 AES-128-GCM (IV || ciphertext ||
// tag). crewjam's xmlenc.AES128GCM decrypts this format but its Encrypt is
// unusable in v0.5.1: it shadows the nonce (and panics on a nil one) and
// seals a zero buffer instead of the plaintext.
type aes128GCM struct{}

func (aes128GCM) KeySize() int      { return 16 }
func (aes128GCM) Algorithm() string { return "http://www.w3.org/2009/xmlenc11#aes128-gcm" }

func (aes128GCM) Decrypt(key any, el *etree.Element) ([]byte, error) {
	return xmlenc.AES128GCM.Decrypt(key, el)
}

func (g aes128GCM) Encrypt(key any, plaintext []byte, _ []byte) (*etree.Element, error) {
	k, ok := key.([]byte)
	if !ok || len(k) != g.KeySize() {
		return nil, fmt.Errorf("aes128-gcm needs a %d-byte key", g.KeySize())
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", nsXMLEnc)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", g.Algorithm())
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, plaintext, nil)))
	return ed, nil
}

// newXMLID is "_" and 160 random bits in hex.
func newXMLID(random io.Reader) (string, error) {
	var b [20]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", err
	}
	return "_" + hex.EncodeToString(b[:]), nil
}
