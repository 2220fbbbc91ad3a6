package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ssobroker/ssobroker/tenants"
)

// Simulator is a small but real SAML 2.0 IdP for development and tests:
// its own key and certificate, metadata, AuthnRequest parsing for the
// HTTP-Redirect and HTTP-POST bindings (signatures verified when present),
// and signed (optionally encrypted) responses for a configurable user, with
// failure scenarios that exercise every check of ValidateResponse.
//
// It only answers service providers registered with
// RegisterServiceProvider, and only at the ACS URLs of their metadata.
type Simulator struct {
	cfg      SimulatorConfig
	entityID string
	ssoURL   string
	key      *rsa.PrivateKey
	cert     *x509.Certificate

	mu  sync.Mutex
	sps map[string]simSP

	wrongOnce sync.Once
	wrongKey  *rsa.PrivateKey
	wrongErr  error
}

// SimulatorConfig configures a Simulator.
type SimulatorConfig struct {
	// BaseURL is where Handler is served; the SSO endpoint is
	// BaseURL+"/sso" and the metadata BaseURL+"/metadata".
	BaseURL string
	// EntityID defaults to BaseURL+"/metadata".
	EntityID string
	// Key and Certificate are the signing key pair; both nil generates an
	// RSA-2048 key and a self-signed certificate.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	// WrongKey signs the wrong_signature scenario; nil generates one on
	// first use.
	WrongKey *rsa.PrivateKey
	// Clock defaults to tenants.SystemClock, Random to crypto/rand.
	Clock  tenants.Clock
	Random io.Reader
	// Decide picks the user and scenario for a request arriving at the
	// Handler; nil signs everyone in as DefaultSimulatedUser with
	// ScenarioOK.
	Decide func(AuthnRequestInfo) (SimulatedUser, Scenario, error)
}

// AttributeStyle selects the attribute names the simulator uses.
type AttributeStyle string

// Attribute styles.
const (
	StyleOkta    AttributeStyle = "okta"    // email, firstName, lastName, groups
	StyleEntra   AttributeStyle = "entra"   // WS-Fed and Microsoft claim URIs
	StyleGeneric AttributeStyle = "generic" // LDAP OIDs with FriendlyNames
)

// SimulatedUser is who the simulator signs in.
type SimulatedUser struct {
	NameID       string
	NameIDFormat string // "" omits the Format attribute
	Email        string
	GivenName    string
	FamilyName   string
	DisplayName  string
	Groups       []string
	// ObjectID and TenantID are Entra's objectidentifier and tenantid
	// claims (StyleEntra); ObjectID defaults to a UUID derived from NameID.
	ObjectID string
	TenantID string
	// GroupsOverageLink replaces the Entra groups claim by groups.link, as
	// Entra does for users in too many groups.
	GroupsOverageLink string
	Attributes        map[string][]string
	Style             AttributeStyle
}

// DefaultSimulatedUser is the user the Handler signs in without Decide.
func DefaultSimulatedUser() SimulatedUser {
	return SimulatedUser{
		NameID: "alice@example.com", NameIDFormat: nameIDEmail,
		Email: "alice@example.com", GivenName: "Alice", FamilyName: "Example", DisplayName: "Alice Example",
		Groups: []string{"engineering", "admins"}, Style: StyleOkta,
	}
}

// ScenarioName names what the simulator gets right or wrong.
type ScenarioName string

// Scenarios.
const (
	ScenarioOK               ScenarioName = "ok"
	ScenarioExpired          ScenarioName = "expired"       // issued 2 hours ago, long expired
	ScenarioNotYetValid      ScenarioName = "not_yet_valid" // issued 2 hours from now
	ScenarioWrongSignature   ScenarioName = "wrong_signature"
	ScenarioUnsigned         ScenarioName = "unsigned"
	ScenarioWrongAudience    ScenarioName = "wrong_audience"
	ScenarioWrongRecipient   ScenarioName = "wrong_recipient"
	ScenarioWrongDestination ScenarioName = "wrong_destination"
	ScenarioWrongIssuer      ScenarioName = "wrong_issuer"
	ScenarioIdPError         ScenarioName = "idp_error" // Responder / AuthnFailed with a message
	ScenarioSHA1             ScenarioName = "sha1"      // RSA-SHA1 signature and SHA-1 digests
	ScenarioUnsolicited      ScenarioName = "unsolicited"
)

// Scenarios lists every scenario, for the dev UI.
func Scenarios() []ScenarioName {
	return []ScenarioName{ScenarioOK, ScenarioExpired, ScenarioNotYetValid, ScenarioWrongSignature,
		ScenarioUnsigned, ScenarioWrongAudience, ScenarioWrongRecipient, ScenarioWrongDestination,
		ScenarioWrongIssuer, ScenarioIdPError, ScenarioSHA1, ScenarioUnsolicited}
}

// SignedParts says which elements the simulator signs.
type SignedParts string

// Signed parts; "" means SignBoth, as Okta does by default.
const (
	SignBoth      SignedParts = "both"
	SignResponse  SignedParts = "response"
	SignAssertion SignedParts = "assertion" // Entra and AD FS default
)

// Encryption selects assertion encryption.
type Encryption string

// Encryption choices; "" means none. Key transport is RSA-OAEP.
const (
	EncryptAES256CBC Encryption = "aes256-cbc"
	EncryptAES128GCM Encryption = "aes128-gcm"
)

// Scenario is one simulated outcome.
type Scenario struct {
	Name    ScenarioName // "" means ScenarioOK
	Sign    SignedParts
	Encrypt Encryption
	// EncryptTo overrides the registered SP's encryption certificate.
	EncryptTo *x509.Certificate
	// AssertionID and ResponseID fix the IDs, e.g. to replay an assertion.
	AssertionID string
	ResponseID  string
	// StatusMessage is the idp_error scenario's message.
	StatusMessage string
	// OmitKeyInfo leaves the certificate out of the signatures, as some
	// PingFederate and Oracle deployments do.
	OmitKeyInfo bool
}

// AuthnRequestInfo is a parsed, checked AuthnRequest.
type AuthnRequestInfo struct {
	ID           string
	Issuer       string // the SP entity ID
	ACSURL       string // where the response goes (from the SP's metadata)
	Destination  string
	Binding      string // BindingRedirect or BindingPost
	RelayState   string
	ForceAuthn   bool
	NameIDFormat string
	IssueInstant time.Time
	Signed       bool // a signature was present and verified
}

type simSP struct {
	entityID      string
	acs           []string
	signingCert   *x509.Certificate
	encryptCert   *x509.Certificate
	requireSigned bool
}

// NewSimulator creates a simulator.
func NewSimulator(cfg SimulatorConfig) (*Simulator, error) {
	base := strings.TrimSuffix(strings.TrimSpace(cfg.BaseURL), "/")
	if u, err := url.Parse(base); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("saml: simulator BaseURL %q is not an absolute URL", cfg.BaseURL)
	}
	if cfg.Clock == nil {
		cfg.Clock = tenants.SystemClock{}
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	s := &Simulator{cfg: cfg, entityID: cfg.EntityID, ssoURL: base + "/sso", key: cfg.Key, cert: cfg.Certificate, sps: map[string]simSP{}}
	if s.entityID == "" {
		s.entityID = base + "/metadata"
	}
	switch {
	case s.key == nil && s.cert == nil:
		k, c, err := selfSigned(cfg.Random, cfg.Clock.Now(), "ssobroker IdP simulator")
		if err != nil {
			return nil, err
		}
		s.key, s.cert = k, c
	case s.key == nil || s.cert == nil:
		return nil, errors.New("saml: simulator needs both Key and Certificate, or neither")
	default:
		if pub, ok := s.cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&s.key.PublicKey) {
			return nil, errors.New("saml: simulator Certificate does not match Key")
		}
	}
	s.wrongKey = cfg.WrongKey
	return s, nil
}

func selfSigned(random io.Reader, now time.Time, cn string) (*rsa.PrivateKey, *x509.Certificate, error) {
	k, err := rsa.GenerateKey(random, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return k, c, err
}

// EntityID is the simulator's IdP entity ID.
func (s *Simulator) EntityID() string { return s.entityID }

// SSOURL is the SingleSignOnService location for both bindings.
func (s *Simulator) SSOURL() string { return s.ssoURL }

// Certificate is the signing certificate.
func (s *Simulator) Certificate() *x509.Certificate { return s.cert }

// IdPConfig is the simulator as a connection's IdP configuration.
func (s *Simulator) IdPConfig() tenants.IdPConfig {
	return tenants.IdPConfig{
		EntityID: s.entityID, SSORedirectURL: s.ssoURL, SSOPostURL: s.ssoURL,
		Certificates: []string{tenants.CertificatePEM(s.cert)}, MetadataXML: string(s.Metadata()),
	}
}

// Metadata is the simulator's IdP metadata.
func (s *Simulator) Metadata() []byte {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMetadata)
	ed.CreateAttr("xmlns:ds", nsDSig)
	ed.CreateAttr("entityID", s.entityID)
	idp := ed.CreateElement("md:IDPSSODescriptor")
	idp.CreateAttr("WantAuthnRequestsSigned", "false")
	idp.CreateAttr("protocolSupportEnumeration", nsProtocol)
	kd := idp.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(s.cert.Raw))
	for _, f := range []string{nameIDEmail, nameIDPersistent, nameIDUnspecified} {
		idp.CreateElement("md:NameIDFormat").SetText(f)
	}
	for _, b := range []string{crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding} {
		e := idp.CreateElement("md:SingleSignOnService")
		e.CreateAttr("Binding", b)
		e.CreateAttr("Location", s.ssoURL)
	}
	doc.Indent(2)
	b, _ := doc.WriteToBytes() // writing to memory cannot fail
	return b
}

// RegisterServiceProvider lets the simulator answer an SP, described by its
// metadata (as served by ServiceProvider.Metadata).
func (s *Simulator) RegisterServiceProvider(metadata []byte) error {
	entities, err := parseMetadataEntities(metadata)
	if err != nil {
		return fmt.Errorf("saml: simulator: SP metadata: %w", err)
	}
	registered := 0
	for _, e := range entities {
		for _, d := range e.SPs {
			sp := simSP{entityID: e.EntityID, requireSigned: d.AuthnRequestsSigned == "true" || d.AuthnRequestsSigned == "1"}
			for _, a := range d.ACS {
				if a.Binding == crewsaml.HTTPPostBinding && a.Location != "" {
					sp.acs = append(sp.acs, a.Location)
				}
			}
			for _, k := range d.Keys {
				for _, xd := range k.KeyInfo.X509Data {
					for _, c := range xd.Certs {
						cert, err := parseBase64Cert(c)
						if err != nil {
							return fmt.Errorf("saml: simulator: SP %q certificate: %w", e.EntityID, err)
						}
						if (k.Use == "" || k.Use == "signing") && sp.signingCert == nil {
							sp.signingCert = cert
						}
						if (k.Use == "" || k.Use == "encryption") && sp.encryptCert == nil {
							sp.encryptCert = cert
						}
					}
				}
			}
			if sp.entityID == "" || len(sp.acs) == 0 {
				return fmt.Errorf("saml: simulator: SP %q has no entity ID or no HTTP-POST ACS", e.EntityID)
			}
			s.mu.Lock()
			s.sps[sp.entityID] = sp
			s.mu.Unlock()
			registered++
		}
	}
	if registered == 0 {
		return errors.New("saml: simulator: metadata has no SPSSODescriptor")
	}
	return nil
}

func (s *Simulator) lookupSP(entityID string) (simSP, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.sps[entityID]
	return sp, ok
}

// Respond builds the response to a parsed AuthnRequest, base64-encoded for
// the SAMLResponse form field.
func (s *Simulator) Respond(info AuthnRequestInfo, user SimulatedUser, sc Scenario) (string, error) {
	sp, ok := s.lookupSP(info.Issuer)
	if !ok {
		return "", fmt.Errorf("saml: simulator: unknown SP %q", info.Issuer)
	}
	acs := info.ACSURL
	if acs == "" {
		acs = sp.acs[0]
	}
	xml, err := s.response(sp, acs, info.ID, user, sc)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(xml), nil
}

// RespondIdPInitiated builds an unsolicited response for a registered SP
// (no InResponseTo), as an IdP dashboard tile does. It returns the ACS URL
// to post it to.
func (s *Simulator) RespondIdPInitiated(spEntityID string, user SimulatedUser, sc Scenario) (acsURL, samlResponse string, err error) {
	sp, ok := s.lookupSP(spEntityID)
	if !ok {
		return "", "", fmt.Errorf("saml: simulator: unknown SP %q", spEntityID)
	}
	xml, err := s.response(sp, sp.acs[0], "", user, sc)
	if err != nil {
		return "", "", err
	}
	return sp.acs[0], base64.StdEncoding.EncodeToString(xml), nil
}

// response builds the XML of one response for a scenario.
func (s *Simulator) response(sp simSP, acs, inResponseTo string, user SimulatedUser, sc Scenario) ([]byte, error) {
	now := s.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	spec := responseSpec{
		id: sc.ResponseID, assertionID: sc.AssertionID,
		issuer: s.entityID, destination: acs, inResponseTo: inResponseTo,
		recipient: acs, audience: sp.entityID, user: user,
		statusCode: statusSuccess,
	}
	var err error
	if spec.id == "" {
		if spec.id, err = newXMLID(s.cfg.Random); err != nil {
			return nil, err
		}
	}
	if spec.assertionID == "" {
		if spec.assertionID, err = newXMLID(s.cfg.Random); err != nil {
			return nil, err
		}
	}
	if spec.sessionIndex, err = newXMLID(s.cfg.Random); err != nil {
		return nil, err
	}
	issue := now
	switch sc.Name {
	case ScenarioExpired:
		issue = now.Add(-2 * time.Hour)
	case ScenarioNotYetValid:
		issue = now.Add(2 * time.Hour)
	}
	spec.issueInstant, spec.notBefore, spec.notOnOrAfter = issue, issue, issue.Add(5*time.Minute)

	sign := signer{key: s.key, keyInfo: s.cert}
	if sc.OmitKeyInfo {
		sign.keyInfo = nil
	}
	switch sc.Name {
	case "", ScenarioOK, ScenarioExpired, ScenarioNotYetValid:
	case ScenarioWrongSignature:
		// Signed by another key while naming the real certificate: the
		// signature itself must fail, not just the certificate lookup.
		k, err := s.wrongSigningKey()
		if err != nil {
			return nil, err
		}
		sign.key = k
	case ScenarioUnsigned:
	case ScenarioWrongAudience:
		spec.audience = "https://wrong-sp.example.com/saml"
	case ScenarioWrongRecipient:
		spec.recipient = "https://wrong-sp.example.com/saml/acs"
	case ScenarioWrongDestination:
		spec.destination = "https://wrong-sp.example.com/saml/acs"
	case ScenarioWrongIssuer:
		spec.issuer = "https://wrong-idp.example.com"
	case ScenarioIdPError:
		spec.statusCode = "urn:oasis:names:tc:SAML:2.0:status:Responder"
		spec.subStatusCode = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
		spec.statusMessage = sc.StatusMessage
		if spec.statusMessage == "" {
			spec.statusMessage = "User is not assigned to this application"
		}
	case ScenarioSHA1:
		sign.method = dsig.RSASHA1SignatureMethod
	case ScenarioUnsolicited:
		spec.inResponseTo = ""
	default:
		return nil, fmt.Errorf("saml: simulator: unknown scenario %q", sc.Name)
	}
	if sc.Name != ScenarioUnsigned {
		switch sc.Sign {
		case "", SignBoth:
			spec.signAssertion, spec.signResponse = &sign, &sign
		case SignResponse:
			spec.signResponse = &sign
		case SignAssertion:
			spec.signAssertion = &sign
		default:
			return nil, fmt.Errorf("saml: simulator: unknown signed parts %q", sc.Sign)
		}
	}
	if sc.Encrypt != "" {
		if sc.Encrypt != EncryptAES256CBC && sc.Encrypt != EncryptAES128GCM {
			return nil, fmt.Errorf("saml: simulator: unknown encryption %q", sc.Encrypt)
		}
		spec.encryption, spec.encryptTo = sc.Encrypt, sc.EncryptTo
		if spec.encryptTo == nil {
			spec.encryptTo = sp.encryptCert
		}
		if spec.encryptTo == nil {
			return nil, fmt.Errorf("saml: simulator: SP %q has no encryption certificate", sp.entityID)
		}
	}
	return buildResponse(spec)
}

func (s *Simulator) wrongSigningKey() (*rsa.PrivateKey, error) {
	s.wrongOnce.Do(func() {
		if s.wrongKey == nil {
			s.wrongKey, s.wrongErr = rsa.GenerateKey(s.cfg.Random, 2048)
		}
	})
	return s.wrongKey, s.wrongErr
}

func parseBool(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}
